"""The spec's appendix of test vectors (proto/spec/vectors.md) must say what
the stored vectors (tests/vectors/gbx1-vectors.txt) say. test_vectors checks
the stored vectors against the library; this checks the appendix against the
stored vectors, so the spec cannot drift from the code.

Every hex value in vectors.md must be a value of gbx1-vectors.txt (or part of
one: audit paths are printed hash by hash), or one of the few values the
appendix adds, which are recomputed here from the stored header with hashlib.
Usage: check_appendix.py VECTORS_MD GBX1_VECTORS_TXT"""
import hashlib
import re
import sys


def b2b(data):
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def main(md_path, txt_path):
    md = open(md_path, encoding="utf-8").read()
    stored = {}
    for line in open(txt_path, encoding="utf-8"):
        if " =" in line and not line.startswith("#"):
            key, value = line.split(" =", 1)
            stored[key.strip()] = value.strip()

    # Values the appendix shows that the stored file does not carry: the
    # payload binding (2-envelope.md section 4) and BLAKE2b-256 examples.
    msg_id = bytes.fromhex(stored["header.message_id"])
    frm = stored["header.from_agency"].encode()
    to = stored["header.to_agency"].encode()
    ad_input = (b"gbx1-payload\0" + bytes([len(msg_id)]) + msg_id + bytes([len(frm)]) + frm +
                bytes([len(to)]) + to)
    extra = {b2b(b""), b2b(b"abc"), ad_input.hex(), b2b(ad_input)}

    values = [b.replace("\n", "") for b in re.findall(r"```\n([0-9a-f\n]+)\n```", md)]
    values += re.findall(r"`([0-9a-f]{16,})`", md)
    known = set(stored.values())
    bad = [v for v in dict.fromkeys(values)
           if v not in known and v not in extra and not any(v in s for s in known)]
    for v in bad:
        print("vectors.md value not in gbx1-vectors.txt: %s..." % v[:32])
    print("%d appendix values checked, %d unknown" % (len(set(values)), len(bad)))
    return 1 if bad or len(values) < 40 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
