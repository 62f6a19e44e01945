#!/usr/bin/python3
"""py_envelope.py: an independent implementation of the gbx envelope format,
suite GBX1 (proto/spec/2-envelope.md, proto/spec/3-keys.md), and the
conformance test that exchanges envelopes with the C library (via envtool).

Nothing here calls the C library for cryptography or encoding: only the
standard library (hashlib BLAKE2b), python3-nacl (Ed25519, crypto_box_seal,
crypto_secretstream_xchacha20poly1305) and python3-protobuf with the message
classes of proto/gbx/v1/envelope.proto. envtool is only the peer.

The format, as implemented below:
  key id         first 8 bytes of BLAKE2b-256("gbx1-key-id\\0" || sign_pk)
  single         Ed25519 over "gbx1-header\\0" || header bytes
  batch          leaves BLAKE2b-256(0x00 || header bytes), nodes
                 BLAKE2b-256(0x01 || left || right), RFC 6962 tree; Ed25519
                 over "gbx1-batch\\0" || be32(tree_size) || root; each
                 envelope carries the RFC 9162 audit path of its header
  payload        crypto_box_seal(content key K) (80) || secretstream header (24)
                 || key commitment BLAKE2b-256("gbx1-key-commit\\0" || K) (32)
                 || chunks of 65536 plaintext bytes + 17, the last tagged
                 FINAL; only the first chunk has AD = BLAKE2b-256(
                 "gbx1-payload\\0" || 16 || message_id || len(from) || from ||
                 len(to) || to); a receiver checks the commitment before
                 opening the stream
  payload_hash   BLAKE2b-256 of all encrypted payload bytes
  receipt        SignedReceipt: Ed25519 by the node over "gbx1-receipt\\0" ||
                 receipt bytes, or, with a BatchProof (receipt batch), the
                 tree above over the receipt bytes and Ed25519 over
                 "gbx1-receipt-batch\\0" || be32(tree_size) || root

Exit status: 0 all checks passed, 1 a check failed, 77 python3-nacl missing.
"""
import argparse
import base64
import hashlib
import hmac
import os
import re
import shutil
import struct
import subprocess
import sys
import time

try:
    from nacl import bindings as nb
    from nacl.exceptions import BadSignatureError, CryptoError
except ImportError:
    print("SKIP: python3-nacl is not installed")
    sys.exit(77)

# ------------------------------------------------------------------ constants

CTX_HEADER = b"gbx1-header\x00"
CTX_BATCH = b"gbx1-batch\x00"
CTX_RECEIPT = b"gbx1-receipt\x00"
CTX_RECEIPT_BATCH = b"gbx1-receipt-batch\x00"
CTX_KEY_ID = b"gbx1-key-id\x00"
CTX_PAYLOAD = b"gbx1-payload\x00"
CTX_KEY_COMMIT = b"gbx1-key-commit\x00"
CTX_FINGERPRINT = b"gbx1-fingerprint\x00"

VERSION = 1
SUITE_GBX1 = 1
SIG_BYTES = 64
MSG_ID_BYTES = 16
HASH_BYTES = 32
KEY_ID_BYTES = 8
CHUNK = 65536
CHUNK_ABYTES = nb.crypto_secretstream_xchacha20poly1305_ABYTES  # 17
SEALED_KEY = 48 + 32  # crypto_box_SEALBYTES + content key
SS_HEADER = nb.crypto_secretstream_xchacha20poly1305_HEADERBYTES  # 24
COMMIT = 32
PREFIX = SEALED_KEY + SS_HEADER + COMMIT  # 136
TAG_MESSAGE = nb.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = nb.crypto_secretstream_xchacha20poly1305_TAG_FINAL
BATCH_MAX = 65536
HEADER_MAX = 16384
ENVELOPE_MAX = 20480
FIELD_MAX = 256
PAYLOAD_MAX = 1 << 30

ID_RE = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")
SERVICE_RE = re.compile(r"[A-Z0-9-]{1,64}")

Envelope = Header = BatchProof = Receipt = SignedReceipt = None  # set by load_proto()


class Reject(Exception):
    """A receiver's refusal, named as in proto/spec/4-reasons.md."""

    def __init__(self, code, why=""):
        super().__init__(code if not why else "%s (%s)" % (code, why))
        self.code = code


def b2b(data):
    return hashlib.blake2b(data, digest_size=HASH_BYTES).digest()


# ----------------------------------------------------------------- key files

def read_keyfile(path):
    """The flat YAML mapping that gbx key files are: key: value or key: "value"."""
    out = {}
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition(":")
            if not sep:
                raise ValueError("%s: not a key file line: %r" % (path, line))
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out[key.strip()] = value
    return out


def key_id(sign_pk):
    return b2b(CTX_KEY_ID + sign_pk)[:KEY_ID_BYTES]


def fingerprint(sign_pk, box_pk, curve_pk):
    h = b2b(CTX_FINGERPRINT + sign_pk + box_pk + curve_pk)
    return "-".join(h[i:i + 2].hex() for i in range(0, 8, 2))


class Pub:
    """A registry entry (.pub)."""

    def __init__(self, path):
        kv = read_keyfile(path)
        self.id = kv["id"]
        self.sign_pk = base64.b64decode(kv["sign"], validate=True)
        self.box_pk = base64.b64decode(kv["box"], validate=True)
        self.curve_pk = base64.b64decode(kv["curve"], validate=True)
        assert len(self.sign_pk) == len(self.box_pk) == len(self.curve_pk) == 32
        self.fingerprint = kv.get("fingerprint")


class Identity:
    """A .secret file: the Ed25519 secret key (libsodium's 64 bytes, seed ||
    public key) and two X25519 secret keys."""

    def __init__(self, path):
        kv = read_keyfile(path)
        self.id = kv["id"]
        self.sign_sk = base64.b64decode(kv["sign_secret"], validate=True)
        self.box_sk = base64.b64decode(kv["box_secret"], validate=True)
        self.curve_sk = base64.b64decode(kv["curve_secret"], validate=True)
        assert len(self.sign_sk) == 64 and len(self.box_sk) == len(self.curve_sk) == 32
        pk, sk = nb.crypto_sign_seed_keypair(self.sign_sk[:32])
        assert sk == self.sign_sk, "sign_secret's public half does not match its seed"
        self.sign_pk = pk
        self.box_pk = nb.crypto_scalarmult_base(self.box_sk)
        self.curve_pk = nb.crypto_scalarmult_base(self.curve_sk)


# -------------------------------------------------------------------- payload

def binding_ad(message_id, from_agency, to_agency):
    f = from_agency.encode("utf-8")
    t = to_agency.encode("utf-8")
    assert len(message_id) == MSG_ID_BYTES and len(f) < 256 and len(t) < 256
    return b2b(CTX_PAYLOAD + bytes([MSG_ID_BYTES]) + message_id + bytes([len(f)]) + f +
               bytes([len(t)]) + t)


def sealed_size(plain_len):
    chunks = max(1, -(-plain_len // CHUNK))
    return PREFIX + plain_len + chunks * CHUNK_ABYTES


def key_commit(key):
    return b2b(CTX_KEY_COMMIT + key)


def seal_payload(box_pk, ad, plain, final_at=None, ad_on_all=False, commit=key_commit):
    """Encrypts PLAIN to BOX_PK. FINAL_AT, AD_ON_ALL and COMMIT (content key
    -> the bytes written as its commitment) make deliberately broken
    payloads for the negative tests."""
    key = nb.crypto_secretstream_xchacha20poly1305_keygen()
    state = nb.crypto_secretstream_xchacha20poly1305_state()
    ss_header = nb.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    out = [nb.crypto_box_seal(key, box_pk), ss_header, commit(key)]
    pieces = [plain[i:i + CHUNK] for i in range(0, len(plain), CHUNK)] or [b""]
    last = len(pieces) - 1 if final_at is None else final_at
    for i, piece in enumerate(pieces):
        tag = TAG_FINAL if i == last else TAG_MESSAGE
        chunk_ad = ad if (i == 0 or ad_on_all) else None
        out.append(nb.crypto_secretstream_xchacha20poly1305_push(state, piece, chunk_ad, tag))
    return b"".join(out)


def open_payload(ident, ad, sealed, plain_len):
    if len(sealed) != sealed_size(plain_len):
        raise Reject("PAYLOAD_LENGTH_MISMATCH")
    try:
        key = nb.crypto_box_seal_open(sealed[:SEALED_KEY], ident.box_pk, ident.box_sk)
    except (CryptoError, ValueError) as e:
        raise Reject("DECRYPT_FAILED", "sealed key: %s" % e)
    if not hmac.compare_digest(key_commit(key), sealed[SEALED_KEY + SS_HEADER:PREFIX]):
        raise Reject("DECRYPT_FAILED", "key commitment")
    try:
        state = nb.crypto_secretstream_xchacha20poly1305_state()
        nb.crypto_secretstream_xchacha20poly1305_init_pull(
            state, sealed[SEALED_KEY:SEALED_KEY + SS_HEADER], key)
    except (CryptoError, ValueError) as e:
        raise Reject("DECRYPT_FAILED", "stream header: %s" % e)
    pos, left, out, first = PREFIX, plain_len, [], True
    while True:
        n = min(left, CHUNK) + CHUNK_ABYTES
        try:
            piece, tag = nb.crypto_secretstream_xchacha20poly1305_pull(
                state, sealed[pos:pos + n], ad if first else None)
        except (CryptoError, ValueError) as e:
            raise Reject("DECRYPT_FAILED", "chunk at %d: %s" % (pos, e))
        pos += n
        left -= len(piece)
        first = False
        out.append(piece)
        if tag not in (TAG_MESSAGE, TAG_FINAL) or (tag == TAG_FINAL) != (left == 0):
            raise Reject("DECRYPT_FAILED", "tag %d with %d bytes left" % (tag, left))
        if left == 0:
            break
    assert pos == len(sealed)
    return b"".join(out)


# --------------------------------------------------------------- merkle tree

def leaf_hash(data):
    return b2b(b"\x00" + data)


def node_hash(left, right):
    return b2b(b"\x01" + left + right)


def _split(n):
    """RFC 6962 2.1: the largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    """RFC 6962 MTH over leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def audit_path(m, leaves):
    """RFC 6962 2.1.1 PATH(m, D[n]) over leaf hashes, leaf to root."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return audit_path(m, leaves[:k]) + [mth(leaves[k:])]
    return audit_path(m - k, leaves[k:]) + [mth(leaves[:k])]


def root_from_path(leaf, index, size, path):
    """RFC 9162 2.1.3.2, step by step."""
    if index >= size:
        raise Reject("BAD_INCLUSION_PATH", "leaf_index >= tree_size")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Reject("BAD_INCLUSION_PATH", "path too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Reject("BAD_INCLUSION_PATH", "path too short")
    return r


# ------------------------------------------------------------------- header

def _text(h, field):
    """2-envelope.md section 2, *text*: at most 256 bytes, valid UTF-8 (the
    protobuf runtime already refused invalid UTF-8 at parse), no U+0000."""
    v = getattr(h, field)
    return len(v.encode("utf-8")) <= FIELD_MAX and "\x00" not in v


def check_header(h):
    """2-envelope.md section 2, in field-number order; the first failure decides."""
    rules = (
        ("message_id", lambda: len(h.message_id) == MSG_ID_BYTES),
        ("correlation_id", lambda: len(h.correlation_id) in (0, MSG_ID_BYTES) and
         (h.kind != 2 or len(h.correlation_id) == MSG_ID_BYTES)),  # 2 = RESPONSE
        ("from_agency", lambda: ID_RE.fullmatch(h.from_agency)),
        ("to_agency", lambda: ID_RE.fullmatch(h.to_agency)),
        ("service_code", lambda: SERVICE_RE.fullmatch(h.service_code)),
        ("service_version", lambda: h.service_version >= 1),
        ("kind", lambda: 1 <= h.kind <= 3),
        ("data_class", lambda: 1 <= h.data_class <= 6),
        ("hk_marking", lambda: 1 <= h.hk_marking <= 5),
        ("purpose_code", lambda: _text(h, "purpose_code")),
        ("case_ref", lambda: _text(h, "case_ref")),
        ("end_user_ref", lambda: _text(h, "end_user_ref")),
        ("legal_route", lambda: 0 <= h.legal_route <= 6),
        ("legal_route_ref", lambda: _text(h, "legal_route_ref")),
        ("consent_ref", lambda: _text(h, "consent_ref")),
        ("consent_type", lambda: 0 <= h.consent_type <= 3),
        ("created_at_ms", lambda: h.created_at_ms > 0),
        ("expires_at_ms", lambda: h.expires_at_ms > h.created_at_ms),
        ("payload_length", lambda: h.payload_length <= PAYLOAD_MAX),
        ("payload_hash", lambda: len(h.payload_hash) == HASH_BYTES),
        ("impact_assessment_ref", lambda: _text(h, "impact_assessment_ref")),
        ("release_authority_ref", lambda: _text(h, "release_authority_ref")),
        ("agreement_ref", lambda: _text(h, "agreement_ref")),
        ("signer_key_id", lambda: len(h.signer_key_id) in (0, KEY_ID_BYTES)),
    )
    for field, ok in rules:
        if not ok():
            raise Reject("FIELD_INVALID", field)


def make_header(signer, to_id, payload_length, payload_hash, message_id=None, **fields):
    h = Header()
    h.message_id = message_id or os.urandom(MSG_ID_BYTES)
    h.from_agency = signer.id
    h.to_agency = to_id
    h.service_code = "CONFORMANCE-ECHO"
    h.service_version = 3
    h.kind = 1                # REQUEST
    h.data_class = 4          # SENSITIVE_PERSONAL
    h.hk_marking = 3          # CONFIDENTIAL
    h.purpose_code = "py-conformance"
    h.case_ref = "個案/2024-0007"
    h.legal_route = 2         # NATIONAL_STANDARD_CONTRACT
    h.legal_route_ref = "NSC-44-2024-17"
    h.consent_type = 3        # SEPARATE_CONSENT
    h.consent_ref = "sep-consent-9"
    h.subject_count = 2
    now = int(time.time() * 1000)
    h.created_at_ms = now
    h.expires_at_ms = now + 600 * 1000
    h.payload_length = payload_length
    h.payload_hash = payload_hash
    h.signer_key_id = key_id(signer.sign_pk)
    for k, v in fields.items():
        setattr(h, k, v)
    return h


class Message:
    """A Python-made message: header, its bytes, the sealed payload. AD and
    BOX_PK replace the binding and the recipient's key, SEAL_OPTS go to
    seal_payload (negative tests)."""

    def __init__(self, signer, recipient_pub, plain, ad=None, box_pk=None, **seal_opts):
        self.plain = plain
        self.message_id = os.urandom(MSG_ID_BYTES)
        if ad is None:
            ad = binding_ad(self.message_id, signer.id, recipient_pub.id)
        self.sealed = seal_payload(box_pk or recipient_pub.box_pk, ad, plain, **seal_opts)
        self.header = make_header(signer, recipient_pub.id, len(plain), b2b(self.sealed),
                                  self.message_id)
        self.header_bytes = self.header.SerializeToString()

    def edit(self, **fields):
        """Changes header fields; returns the new header bytes."""
        for k, v in fields.items():
            if v is None:
                self.header.ClearField(k)
            else:
                setattr(self.header, k, v)
        self.header_bytes = self.header.SerializeToString()
        return self.header_bytes


def envelope_bytes(header_bytes, signature, proof=None):
    e = Envelope()
    e.version = VERSION
    e.suite = SUITE_GBX1
    e.header = header_bytes
    e.signature = signature
    if proof is not None:
        e.batch.CopyFrom(proof)
    return e.SerializeToString()


def sign(signer, msg):
    return nb.crypto_sign(msg, signer.sign_sk)[:SIG_BYTES]  # detached: sig || msg


def sign_single(signer, header_bytes):
    return envelope_bytes(header_bytes, sign(signer, CTX_HEADER + header_bytes))


def sign_batch(signer, headers):
    leaves = [leaf_hash(h) for h in headers]
    root = mth(leaves)
    sig = sign(signer, CTX_BATCH + struct.pack(">I", len(headers)) + root)
    out = []
    for i, h in enumerate(headers):
        proof = BatchProof(leaf_index=i, tree_size=len(headers),
                           path=b"".join(audit_path(i, leaves)), root=root)
        out.append(envelope_bytes(h, sig, proof))
    return out


def verify_envelope(data, registry):
    """2-envelope.md section 8 steps 1 to 10. REGISTRY maps agency ids to
    their public entries (Pub). Returns (envelope, header)."""
    if len(data) > ENVELOPE_MAX:                                # 1 size, then decode
        raise Reject("HEADER_TOO_LARGE")
    try:
        e = Envelope.FromString(data)
    except Exception as ex:  # google.protobuf.message.DecodeError
        raise Reject("MALFORMED", str(ex))
    if e.version != VERSION:                                    # 2 version
        raise Reject("UNSUPPORTED_VERSION")
    if e.suite != SUITE_GBX1:                                   # 3 suite
        raise Reject("UNKNOWN_SUITE")
    if not e.header:                                            # 4 sizes
        raise Reject("MALFORMED", "empty header")
    if len(e.header) > HEADER_MAX:
        raise Reject("HEADER_TOO_LARGE")
    if len(e.signature) != SIG_BYTES:
        raise Reject("BAD_SIGNATURE", "signature length")
    try:                                                        # 5 header parse
        h = Header.FromString(e.header)
    except Exception as ex:
        raise Reject("MALFORMED", str(ex))
    check_header(h)                                             # 6 field checks
    b = e.batch if e.HasField("batch") else None                #   and proof shape
    if b is not None and (not 1 <= b.tree_size <= BATCH_MAX or b.leaf_index >= b.tree_size or
                          len(b.path) % HASH_BYTES or len(b.path) // HASH_BYTES > 16 or
                          len(b.root) != HASH_BYTES):
        raise Reject("BAD_INCLUSION_PATH", "proof shape")
    signer = registry.get(h.from_agency)                        # 7 signer
    if signer is None:
        raise Reject("UNKNOWN_AGENCY")
    if h.signer_key_id != key_id(signer.sign_pk):               # 8 key id (8 bytes)
        raise Reject("WRONG_KEY", "signer_key_id")
    if b is not None:                                           # 9 inclusion path
        path = [b.path[i:i + HASH_BYTES] for i in range(0, len(b.path), HASH_BYTES)]
        root = root_from_path(leaf_hash(e.header), b.leaf_index, b.tree_size, path)
        if b.root != root:
            raise Reject("BAD_INCLUSION_PATH", "root differs from BatchProof.root")
        msg = CTX_BATCH + struct.pack(">I", b.tree_size) + root
    else:
        msg = CTX_HEADER + e.header
    try:                                                        # 10 signature
        nb.crypto_sign_open(e.signature + msg, signer.sign_pk)
    except BadSignatureError:
        raise Reject("BAD_SIGNATURE")
    return e, h


def proof_shape_ok(b):
    """2-envelope.md section 6.2, the proof shape."""
    return (1 <= b.tree_size <= BATCH_MAX and b.leaf_index < b.tree_size and
            len(b.path) % HASH_BYTES == 0 and len(b.path) // HASH_BYTES <= 16 and
            len(b.root) == HASH_BYTES)


def sign_receipts(node, receipts, batch=True):
    """Serialized SignedReceipts for the serialized RECEIPTS (section 7, 7.1)."""
    out = []
    if not batch:
        for r in receipts:
            out.append(SignedReceipt(suite=SUITE_GBX1, receipt=r,
                                     signature=sign(node, CTX_RECEIPT + r)).SerializeToString())
        return out
    leaves = [leaf_hash(r) for r in receipts]
    root = mth(leaves)
    sig = sign(node, CTX_RECEIPT_BATCH + struct.pack(">I", len(receipts)) + root)
    for i, r in enumerate(receipts):
        sr = SignedReceipt(suite=SUITE_GBX1, receipt=r, signature=sig)
        sr.batch.CopyFrom(BatchProof(leaf_index=i, tree_size=len(receipts),
                                     path=b"".join(audit_path(i, leaves)), root=root))
        out.append(sr.SerializeToString())
    return out


def verify_receipt(data, node_pub):
    """2-envelope.md section 7 steps 1 to 4 (3a to 3c for a receipt batch).
    Returns (SignedReceipt, Receipt)."""
    try:                                                        # 1
        sr = SignedReceipt.FromString(data)
    except Exception as ex:
        raise Reject("MALFORMED", str(ex))
    if sr.suite != SUITE_GBX1:                                  # 2
        raise Reject("UNKNOWN_SUITE")
    if len(sr.signature) != SIG_BYTES:                          # 3
        raise Reject("BAD_SIGNATURE", "signature length")
    if sr.HasField("batch"):
        b = sr.batch
        if not proof_shape_ok(b):                               # 3a
            raise Reject("BAD_INCLUSION_PATH", "proof shape")
        path = [b.path[i:i + HASH_BYTES] for i in range(0, len(b.path), HASH_BYTES)]
        root = root_from_path(leaf_hash(sr.receipt), b.leaf_index, b.tree_size, path)  # 3b
        if not hmac.compare_digest(root, b.root):
            raise Reject("BAD_INCLUSION_PATH", "root differs from BatchProof.root")
        msg = CTX_RECEIPT_BATCH + struct.pack(">I", b.tree_size) + root
    else:
        msg = CTX_RECEIPT + sr.receipt
    try:                                                        # 3c
        nb.crypto_sign_open(sr.signature + msg, node_pub.sign_pk)
    except BadSignatureError:
        raise Reject("BAD_SIGNATURE")
    try:                                                        # 4
        r = Receipt.FromString(sr.receipt)
    except Exception as ex:
        raise Reject("MALFORMED", str(ex))
    return sr, r


def receive(data, sealed, registry, recipient):
    """A recipient's whole path: section 8 steps 1 to 13."""
    e, h = verify_envelope(data, registry)
    if len(sealed) != sealed_size(h.payload_length):            # 11
        raise Reject("PAYLOAD_LENGTH_MISMATCH")
    if b2b(sealed) != h.payload_hash:                           # 12
        raise Reject("PAYLOAD_HASH_MISMATCH")
    ad = binding_ad(h.message_id, h.from_agency, h.to_agency)   # 13
    return e, h, open_payload(recipient, ad, sealed, h.payload_length)


# ---------------------------------------------------------------- protobuf

def load_proto(pb2_dir, descriptor_set):
    global Envelope, Header, BatchProof, Receipt, SignedReceipt
    if pb2_dir:
        sys.path.insert(0, pb2_dir)
        from gbx.v1 import envelope_pb2 as pb
        Envelope, Header, BatchProof = pb.Envelope, pb.Header, pb.BatchProof
        Receipt, SignedReceipt = pb.Receipt, pb.SignedReceipt
        return "protoc --python_out"
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    with open(descriptor_set, "rb") as f:
        fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)

    def cls(name):
        desc = pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(desc)
        return message_factory.MessageFactory(pool).GetPrototype(desc)
    Envelope, Header, BatchProof = (cls("gbx.v1.Envelope"), cls("gbx.v1.Header"),
                                    cls("gbx.v1.BatchProof"))
    Receipt, SignedReceipt = cls("gbx.v1.Receipt"), cls("gbx.v1.SignedReceipt")
    return "descriptor set"


# ------------------------------------------------------------ the test run

OK = "OK"


class Run:
    def __init__(self, envtool, workdir, strict):
        self.envtool = envtool
        self.workdir = workdir
        self.strict = strict
        self.failed = 0
        self.passed = 0
        self.findings = []
        self.seq = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print("ok      %s" % what)
        else:
            self.failed += 1
            print("FAILED  %s%s" % (what, (": " + detail) if detail else ""))
        return ok

    def finding(self, what):
        """A known disagreement between the C library and the spec."""
        self.findings.append(what)
        print("FINDING %s" % what)
        if self.strict:
            self.failed += 1

    def tool(self, *args):
        p = subprocess.run([self.envtool] + list(args), capture_output=True, text=True)
        if p.stderr:
            sys.stderr.write(p.stderr)
        return p.returncode, p.stdout

    def path(self, name):
        return os.path.join(self.workdir, name)

    def c_open(self, recipient, signer, env, sealed):
        """envtool open: (OK or the error name, key=value dict, plaintext or None)."""
        self.seq += 1
        base = self.path("py-%d" % self.seq)
        for suffix, data in ((".env", env), (".payload", sealed)):
            with open(base + suffix, "wb") as f:
                f.write(data)
        out_plain = base + ".plain"
        rc, out = self.tool("open", recipient, signer, base + ".env", base + ".payload",
                            out_plain)
        plain = read(out_plain) if os.path.exists(out_plain) else None
        if rc == 0:
            return OK, parse_kv(out), plain
        if rc == 1 and plain is None:
            return out.strip(), {}, None
        wrote = ", wrote plaintext" if plain is not None else ""
        return "exit %d %r%s" % (rc, out, wrote), {}, plain


def py_result(fn):
    """OK, or the reason code FN was refused with."""
    try:
        fn()
        return OK
    except Reject as r:
        return r.code


def parse_kv(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def flip(data, pos):
    b = bytearray(data)
    b[pos] ^= 0x01
    return bytes(b)


def varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7f) | (0x80 if n > 0x7f else 0))
        n >>= 7
        if not n:
            return bytes(out)


def raw_field(number, value):
    """A length-delimited protobuf field, for bytes protobuf will not write for us."""
    return varint(number << 3 | 2) + varint(len(value)) + value


def write_pub(path, id_, sign_pk, box_pk, curve_pk):
    """A registry entry in the .pub format of 3-keys.md, written by Python."""
    b64 = lambda k: base64.b64encode(k).decode()
    with open(path, "w") as f:
        f.write('# written by py_envelope.py\nid: %s\nsign: "%s"\nbox: "%s"\ncurve: "%s"\n'
                'fingerprint: "%s"\n' % (id_, b64(sign_pk), b64(box_pk), b64(curve_pk),
                                         fingerprint(sign_pk, box_pk, curve_pk)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envtool", required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--pb2-dir", help="directory holding gbx/v1/envelope_pb2.py")
    src.add_argument("--descriptor-set", help="FileDescriptorSet of gbx/v1/envelope.proto")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--strict", action="store_true", help="known C findings fail the test")
    ap.add_argument("--keep", action="store_true", help="keep the workdir")
    args = ap.parse_args()

    how = load_proto(args.pb2_dir, args.descriptor_set)
    print("# message classes from %s; libsodium via python3-nacl" % how)
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    t = Run(args.envtool, args.workdir, args.strict)

    # ---- keys: made by C, read by Python
    keys = t.path("keys")
    os.makedirs(keys)
    names = {"alice": "hk.dh", "bob": "gd.wjw", "mallory": "mo.x"}
    for agency in names.values():
        rc, out = t.tool("keygen", keys, agency)
        if not t.check(rc == 0, "envtool keygen %s" % agency, out):
            return 1
    sec = {k: os.path.join(keys, v + ".secret") for k, v in names.items()}
    pubf = {k: os.path.join(keys, v + ".pub") for k, v in names.items()}
    ident = {k: Identity(sec[k]) for k in names}
    pub = {k: Pub(pubf[k]) for k in names}
    for k in names:
        i, p = ident[k], pub[k]
        t.check(i.id == p.id and i.sign_pk == p.sign_pk and i.box_pk == p.box_pk and
                i.curve_pk == p.curve_pk, "%s: .secret's public keys equal .pub's" % p.id)
        t.check(p.fingerprint == fingerprint(p.sign_pk, p.box_pk, p.curve_pk),
                "%s: .pub fingerprint recomputed" % p.id, p.fingerprint or "none")
    alice, bob, mallory = ident["alice"], ident["bob"], ident["mallory"]
    registry = {alice.id: pub["alice"]}
    # alice's registry entry with other keys: a key change the receiver missed
    pubf["alice-rekeyed"] = t.path("keys/alice-rekeyed.pub")
    write_pub(pubf["alice-rekeyed"], alice.id, mallory.sign_pk, mallory.box_pk,
              mallory.curve_pk)
    pub["alice-rekeyed"] = Pub(pubf["alice-rekeyed"])

    sizes = [0, 1000, 65536, 200000]
    plains = {n: os.urandom(n) for n in sizes + [131072]}

    # ---- (a) Python seals and signs, C opens and verifies
    for n in sizes:
        m = Message(alice, pub["bob"], plains[n])
        env = sign_single(alice, m.header_bytes)
        res, kv, plain = t.c_open(sec["bob"], pubf["alice"], env, m.sealed)
        t.check(res == OK and plain == m.plain and kv.get("batch") == "0" and
                kv.get("header_hash") == b2b(m.header_bytes).hex() and
                kv.get("signer_key_id") == key_id(alice.sign_pk).hex(),
                "py->C single, %d bytes: verified, decrypted, header hash and key id agree" % n,
                "%s %r" % (res, kv))

    batch_sizes = [0, 1000, 65536, 200000, 131072]
    msgs = [Message(alice, pub["bob"], plains[n]) for n in batch_sizes]
    envs = sign_batch(alice, [m.header_bytes for m in msgs])
    root = mth([leaf_hash(m.header_bytes) for m in msgs])
    for i, (m, env) in enumerate(zip(msgs, envs)):
        res, kv, plain = t.c_open(sec["bob"], pubf["alice"], env, m.sealed)
        t.check(res == OK and plain == m.plain and kv.get("batch") == "1" and
                kv.get("leaf_index") == str(i) and kv.get("tree_size") == "5" and
                kv.get("root") == root.hex(),
                "py->C batch of 5, leaf %d (%d bytes): verified and decrypted" %
                (i, len(m.plain)), "%s %r" % (res, kv))

    for size in (1, 2, 3, 4, 6, 7, 8, 9, 16, 17):
        msgs = [Message(alice, pub["bob"], os.urandom(i)) for i in range(size)]
        envs = sign_batch(alice, [m.header_bytes for m in msgs])
        bad = [i for i, (m, env) in enumerate(zip(msgs, envs))
               if t.c_open(sec["bob"], pubf["alice"], env, m.sealed)[0::2] != (OK, m.plain)]
        t.check(not bad, "py->C batch of %d: every leaf verifies in C" % size,
                "leaves failing: %s" % bad)

    # ---- (b) C seals and signs, Python opens and verifies
    for n in sizes:
        plain_path = t.path("plain-%d" % n)
        with open(plain_path, "wb") as f:
            f.write(plains[n])
        for batch in (None, 5):
            outdir = t.path("c-%d-%s" % (n, batch or "single"))
            os.makedirs(outdir)
            extra = ["--batch", str(batch)] if batch else []
            rc, out = t.tool("seal", sec["alice"], pubf["bob"], plain_path, outdir, *extra)
            if t.check(rc == 0, "envtool seal %d bytes%s" % (n, " --batch 5" if batch else ""),
                       out):
                check_c_messages(t, outdir, batch or 1, bool(batch), plains[n], registry, bob)

    for size in (1, 2, 3, 4, 7, 8, 9, 17):
        outdir = t.path("c-shape-%d" % size)
        os.makedirs(outdir)
        rc, out = t.tool("seal", sec["alice"], pubf["bob"], t.path("plain-1000"), outdir,
                         "--batch", str(size))
        if t.check(rc == 0, "envtool seal 1000 bytes --batch %d" % size, out):
            check_c_messages(t, outdir, size, True, plains[1000], registry, bob)

    # ---- (c) negative and edge cases, Python-made, run through both receivers.
    # SPEC: the codes 2-envelope.md allows (OK = accepted and decrypted).
    # KNOWN: what the C library answers today where it disagrees with the spec;
    # that is a FINDING, anything else outside SPEC fails.
    cases = []

    def case(what, spec, build, known=None, signer="alice"):
        cases.append((what, spec if isinstance(spec, tuple) else (spec,), build, known, signer))

    def single(n=1000, sign_with=None, msg_opts=None, **fields):
        """A single-signature message of N bytes with header FIELDS changed."""
        def build():
            m = Message(alice, pub["bob"], plains[n], **(msg_opts or {}))
            if fields:
                m.edit(**fields)
            return m, sign_single(sign_with or alice, m.header_bytes)
        return build

    def env_edit(inner, fn):
        """INNER's message with its envelope bytes changed by FN(Envelope or bytes)."""
        def build():
            m, env = inner()
            e = Envelope.FromString(env)
            out = fn(e)
            return m, out if isinstance(out, bytes) else e.SerializeToString()
        return build

    def payload_edit(inner, fn):
        def build():
            m, env = inner()
            m.sealed = fn(m.sealed)
            return m, env
        return build

    def raw_header(extra, n=1000):
        """Header bytes with EXTRA appended (last occurrence wins, unknown ignored)."""
        def build():
            m = Message(alice, pub["bob"], plains[n])
            return m, sign_single(alice, m.header_bytes + extra)
        return build

    def setattr_(name, value):
        return lambda e: setattr(e, name, value)

    for n in sizes:
        for pos in (0, 31, 63):
            case("signature byte %d flipped (%d bytes)" % (pos, n), "BAD_SIGNATURE",
                 env_edit(single(n), lambda e, pos=pos: setattr(e, "signature",
                                                                flip(e.signature, pos))))
        case("payload with a wrong AD binding (%d bytes)" % n, "DECRYPT_FAILED",
             single(n, msg_opts={"ad": binding_ad(b"\x07" * 16, alice.id, "gd.other")}))
    big = 200000
    case("a flipped payload byte", "PAYLOAD_HASH_MISMATCH",
         payload_edit(single(big), lambda s: flip(s, 150000)))
    case("a payload one byte short", "PAYLOAD_LENGTH_MISMATCH",
         payload_edit(single(big), lambda s: s[:-1]))
    case("a payload one byte long", "PAYLOAD_LENGTH_MISMATCH",
         payload_edit(single(big), lambda s: s + b"\x00"))
    case("a payload with an early FINAL tag", "DECRYPT_FAILED",
         single(big, msg_opts={"final_at": 0}))
    case("a payload with AD on later chunks too", "DECRYPT_FAILED",
         single(big, msg_opts={"ad_on_all": True}))
    case("a payload without AD on the first chunk", "DECRYPT_FAILED",
         single(big, msg_opts={"ad": b""}))
    case("a payload sealed to another recipient's key", "DECRYPT_FAILED",
         single(msg_opts={"box_pk": mallory.box_pk}))
    # The key commitment (signed through payload_hash, which Message computes
    # over the payload as built): a wrong one is refused at step 13.
    case("a payload committing to another content key", "DECRYPT_FAILED",
         single(msg_opts={"commit": lambda k: key_commit(flip(k, 0))}))
    case("a payload whose commitment label lacks its NUL", "DECRYPT_FAILED",
         single(msg_opts={"commit": lambda k: b2b(CTX_KEY_COMMIT[:-1] + k)}))
    case("a payload with H(K) as commitment (no label)", "DECRYPT_FAILED",
         single(msg_opts={"commit": lambda k: b2b(k)}))
    case("a payload with a zero commitment", "DECRYPT_FAILED",
         single(big, msg_opts={"commit": lambda k: bytes(COMMIT)}))
    case("a payload without a commitment (the 104-byte prefix)", "PAYLOAD_LENGTH_MISMATCH",
         single(msg_opts={"commit": lambda k: b""}))
    case("a registry entry with other keys for the sender", "WRONG_KEY", single(),
         signer="alice-rekeyed")
    case("signer_key_id of another key", "WRONG_KEY",
         single(signer_key_id=key_id(mallory.sign_pk)))
    case("alice's header signed by mallory's key", "BAD_SIGNATURE", single(sign_with=mallory))
    case("a batch-context signature on a single envelope", "BAD_SIGNATURE",
         env_edit(single(), lambda e: setattr(e, "signature",
                                              sign(alice, CTX_BATCH + e.header))))
    case("a single signature presented as a batch of 1", "BAD_SIGNATURE",
         env_edit(single(), lambda e: e.batch.CopyFrom(BatchProof(
             leaf_index=0, tree_size=1, root=leaf_hash(e.header)))))
    case("envelope version 2", "UNSUPPORTED_VERSION", env_edit(single(), setattr_("version", 2)))
    case("suite 2", "UNKNOWN_SUITE", env_edit(single(), setattr_("suite", 2)))
    case("a header over 16384 bytes", "HEADER_TOO_LARGE", single(purpose_code="x" * 16400))
    case("an envelope of 20481+ bytes (unknown field 15)", "HEADER_TOO_LARGE",
         env_edit(single(), lambda e: e.SerializeToString() + raw_field(15, b"\x00" * 20480)))
    case("an unknown header field 99", OK, raw_header(raw_field(99, b"later revision")))

    def message_id_twice():  # the first occurrence is a decoy; the AD binds the last
        m = Message(alice, pub["bob"], plains[1000])
        return m, sign_single(alice, raw_field(1, os.urandom(16)) + m.header_bytes)
    case("message_id given twice, the last wins", OK, message_id_twice)
    case("message_id of 15 bytes", "FIELD_INVALID", single(message_id=b"\x01" * 15))
    case("kind 0", "FIELD_INVALID", single(kind=0))
    case("kind 9 (unknown value)", "FIELD_INVALID", single(kind=9))
    case("RESPONSE without correlation_id", "FIELD_INVALID", single(kind=2))
    case("expires_at_ms = created_at_ms", "FIELD_INVALID",
         single(expires_at_ms=1700000000000, created_at_ms=1700000000000))
    case("purpose_code of 257 bytes", "FIELD_INVALID", single(purpose_code="p" * 257))
    case("service_code in lower case", "FIELD_INVALID", single(service_code="echo"))
    case("from_agency starting with '-'", "FIELD_INVALID", single(from_agency="-hk.dh"))
    # TRUNCATED refines MALFORMED for input that ends inside a field; a
    # receiver whose protobuf library cannot tell the two apart says MALFORMED.
    case("an envelope cut short by 10 bytes", ("TRUNCATED", "MALFORMED"),
         env_edit(single(), lambda e: e.SerializeToString()[:-10]))
    case("a 63-byte signature", "BAD_SIGNATURE",
         env_edit(single(), lambda e: setattr(e, "signature", e.signature[:63])))
    case("payload_length 2^30 + 1", "FIELD_INVALID", single(payload_length=PAYLOAD_MAX + 1))
    case("no signer_key_id", "WRONG_KEY", single(signer_key_id=None), known=OK)
    case("from_agency 'hk.dh\\0evil'", "FIELD_INVALID", single(from_agency=alice.id + "\x00evil"),
         known=OK)
    case("to_agency 'gd.wjw\\0other'", "FIELD_INVALID",
         single(to_agency=pub["bob"].id + "\x00other"), known=OK)
    case("purpose_code of 302 bytes with a NUL at byte 1", "FIELD_INVALID",
         single(purpose_code="a\x00" + "b" * 300), known=OK)
    # A stock proto3 parser refuses invalid UTF-8 in a string at step 5
    # (MALFORMED); the text rule of section 2 says FIELD_INVALID.
    case("purpose_code with invalid UTF-8", ("MALFORMED", "FIELD_INVALID"),
         raw_header(raw_field(10, b"o\xff\xfe")))
    case("purpose_code 'ok\\0' + invalid UTF-8", ("MALFORMED", "FIELD_INVALID"),
         raw_header(raw_field(10, b"ok\x00\xff")), known=OK)

    def batch(mutate=None, index=2):
        """Leaf INDEX of a Python-signed batch of 5, its BatchProof changed by MUTATE."""
        def build():
            msgs = [Message(alice, pub["bob"], plains[1000]) for _ in range(5)]
            e = Envelope.FromString(sign_batch(alice, [m.header_bytes for m in msgs])[index])
            if mutate:
                mutate(e)
            return msgs[index], e.SerializeToString()
        return build

    def kind0_header(header_bytes):
        h = Header.FromString(header_bytes)
        h.kind = 0
        return h.SerializeToString()

    def proof(**fields):
        def mutate(e):
            for k, v in fields.items():
                if callable(v):
                    v = v(getattr(e.batch, k))
                if v is None:
                    e.batch.ClearField(k)
                else:
                    setattr(e.batch, k, v)
        return mutate

    case("batch signature byte flipped", "BAD_SIGNATURE",
         batch(lambda e: setattr(e, "signature", flip(e.signature, 5))))

    def step8_before_9():
        m = Message(alice, pub["bob"], plains[1000])
        e = Envelope.FromString(sign_batch(alice, [m.edit(signer_key_id=b"\x00" * 8)])[0])
        e.batch.tree_size = 0
        return m, e.SerializeToString()
    case("batch: wrong signer_key_id and tree_size 0 (proof shape, step 6, before key id)",
         "BAD_INCLUSION_PATH", step8_before_9)
    case("batch: kind 0 and tree_size 0 (fields before proof shape)", "FIELD_INVALID",
         batch(lambda e: (setattr(e, "header", kind0_header(e.header)),
                          setattr(e.batch, "tree_size", 0))))
    case("batch path byte flipped", "BAD_INCLUSION_PATH",
         batch(proof(path=lambda p: flip(p, 40))))
    case("batch leaf_index 2 -> 3", ("BAD_INCLUSION_PATH", "BAD_SIGNATURE"),
         batch(proof(leaf_index=3)))
    case("batch leaf_index 2 -> 5 (= tree_size)", "BAD_INCLUSION_PATH", batch(proof(leaf_index=5)))
    case("batch path one hash short", "BAD_INCLUSION_PATH", batch(proof(path=lambda p: p[:-32])))
    case("batch path one hash long", "BAD_INCLUSION_PATH",
         batch(proof(path=lambda p: p + b"\x00" * 32)))
    case("batch path of 31 bytes", "BAD_INCLUSION_PATH", batch(proof(path=lambda p: p[:31])))
    case("batch BatchProof.root changed", "BAD_INCLUSION_PATH",
         batch(proof(root=lambda r: flip(r, 0))))
    case("batch tree_size 5 -> 3 (path too long)", "BAD_INCLUSION_PATH", batch(proof(tree_size=3)))
    case("batch tree_size 5 -> 6 (same path length: only the signature notices)",
         "BAD_SIGNATURE", batch(proof(tree_size=6)))
    case("batch tree_size 0", "BAD_INCLUSION_PATH", batch(proof(tree_size=0)))
    case("batch tree_size 65537", "BAD_INCLUSION_PATH", batch(proof(tree_size=65537)))
    case("batch without BatchProof.root", "BAD_INCLUSION_PATH", batch(proof(root=None)))
    case("batch without root, path byte flipped", "BAD_INCLUSION_PATH",
         batch(proof(root=None, path=lambda p: flip(p, 40))))

    for what, spec, build, known, signer in cases:
        m, env = build()
        reg = {alice.id: pub[signer]}
        py = py_result(lambda: check_plain(receive(env, m.sealed, reg, bob), m.plain))
        t.check(py in spec, "Python: %s -> %s" % (what, "/".join(spec)), py)
        c, kv, plain = t.c_open(sec["bob"], pubf[signer], env, m.sealed)
        if c in spec and (c != OK or plain == m.plain):
            t.check(True, "C:      %s -> %s" % (what, c))
        elif known is not None and c == known:
            t.finding("C: %s -> %s, spec says %s" % (what, c, "/".join(spec)))
        else:
            t.check(False, "C:      %s -> %s" % (what, "/".join(spec)), c)

    # ---- (c') C-made envelopes that Python must refuse
    outdir = t.path("c-1000-5")
    env = read(os.path.join(outdir, "msg-3.env"))
    sealed = read(os.path.join(outdir, "msg-3.payload"))
    e = Envelope.FromString(env)
    h = Header.FromString(e.header)
    for what, code, fn in (
            ("C batch envelope, signature byte flipped", "BAD_SIGNATURE",
             lambda: verify_envelope(envelope_bytes(e.header, flip(e.signature, 9), e.batch),
                                     registry)),
            ("C batch envelope, path byte flipped", "BAD_INCLUSION_PATH",
             lambda: verify_envelope(envelope_bytes(e.header, e.signature, BatchProof(
                 leaf_index=e.batch.leaf_index, tree_size=e.batch.tree_size,
                 path=flip(e.batch.path, 0), root=e.batch.root)), registry)),
            ("C envelope, sender's registry entry with other keys", "WRONG_KEY",
             lambda: verify_envelope(env, {alice.id: pub["alice-rekeyed"]})),
            ("C envelope, sender not in the registry", "UNKNOWN_AGENCY",
             lambda: verify_envelope(env, {})),
            ("C payload, a flipped byte", "PAYLOAD_HASH_MISMATCH",
             lambda: receive(env, flip(sealed, 500), registry, bob)),
            ("C payload, opened with another binding", "DECRYPT_FAILED",
             lambda: open_payload(bob, binding_ad(h.message_id, h.from_agency, "gd.x"),
                                  sealed, h.payload_length)),
            ("C payload, opened by another recipient", "DECRYPT_FAILED",
             lambda: receive(env, sealed, registry, mallory)),
            ("C payload, a commitment byte flipped (step 13 alone)", "DECRYPT_FAILED",
             lambda: open_payload(bob, binding_ad(h.message_id, h.from_agency, h.to_agency),
                                  flip(sealed, SEALED_KEY + SS_HEADER + 3), h.payload_length))):
        got = py_result(fn)
        t.check(got == code, "Python: %s -> %s" % (what, code), got)
    key = nb.crypto_box_seal_open(sealed[:SEALED_KEY], bob.box_pk, bob.box_sk)
    t.check(sealed[SEALED_KEY + SS_HEADER:PREFIX] == key_commit(key),
            "C payload: bytes 104..135 are H(\"gbx1-key-commit\\0\" || K)")

    run_receipts(t, sec["alice"], pubf["alice"], pub["alice"], alice, mallory)

    print("# %d checks passed, %d failed, %d findings (known C disagreements with the spec%s)"
          % (t.passed, t.failed, len(t.findings), ", failing under --strict" if args.strict
             else "; --strict fails on them"))
    if t.failed == 0 and not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 1 if t.failed else 0


def make_receipt(node_id, seq):
    return Receipt(message_id=os.urandom(MSG_ID_BYTES), header_hash=os.urandom(HASH_BYTES),
                   node_id=node_id, accepted_at_ms=int(time.time() * 1000), sequence=seq,
                   status=1, rule_id="py-rule").SerializeToString()


def run_receipts(t, node_sec, node_pubf, node_pub, node, other):
    """Receipts (2-envelope.md section 7): C signs, Python verifies; Python
    signs, C verifies; tampered receipt batches through both verifiers."""
    # ---- C signs, Python verifies and rebuilds the tree
    for n, single in ((1, True), (3, True), (1, False), (2, False), (3, False), (7, False),
                      (64, False), (257, False)):
        outdir = t.path("rcpt-%d-%s" % (n, "single" if single else "batch"))
        os.makedirs(outdir)
        rc, out = t.tool("receipts", node_sec, outdir, str(n), *(["--single"] if single else []))
        what = "C->py receipts, %d %s" % (n, "single" if single else "in one batch")
        if not t.check(rc == 0, "envtool receipts %d%s" % (n, " --single" if single else ""), out):
            continue
        srs = [read(os.path.join(outdir, "rcpt-%d.sr" % i)) for i in range(n)]
        problems = []
        parsed = []
        for i, data in enumerate(srs):
            try:
                sr, r = verify_receipt(data, node_pub)
            except Reject as ex:
                problems.append("receipt %d: %s" % (i, ex))
                continue
            parsed.append(sr)
            if r.sequence != i or r.node_id != node_pub.id:
                problems.append("receipt %d: fields" % i)
            if sr.HasField("batch") == single:
                problems.append("receipt %d: batch presence" % i)
        if not single and len(parsed) == n:
            leaves = [leaf_hash(sr.receipt) for sr in parsed]
            root = mth(leaves)
            for i, sr in enumerate(parsed):
                if (sr.batch.root != root or sr.batch.leaf_index != i or sr.batch.tree_size != n
                        or sr.batch.path != b"".join(audit_path(i, leaves)) or
                        sr.signature != parsed[0].signature):
                    problems.append("receipt %d: proof differs from RFC 6962 PATH/MTH" % i)
        t.check(not problems, what + ": verified%s" % (
            "" if single else ", root and paths equal RFC 6962"), "; ".join(problems))

    def c_verify(data):
        t.seq += 1
        path = t.path("py-rcpt-%d.sr" % t.seq)
        with open(path, "wb") as f:
            f.write(data)
        rc, out = t.tool("verify-receipt", node_pubf, path)
        if rc == 0:
            return OK, parse_kv(out)
        return (out.strip() if rc == 1 else "exit %d %r" % (rc, out)), {}

    # ---- Python signs, C verifies
    for n in (1, 2, 3, 5, 8, 17):
        rs = [make_receipt(node.id, i) for i in range(n)]
        bad = []
        for batch in (False, True):
            for i, data in enumerate(sign_receipts(node, rs, batch)):
                res, kv = c_verify(data)
                if res != OK or kv.get("sequence") != str(i) or kv.get("batch") != str(int(batch)):
                    bad.append("%s %d: %s" % ("batch" if batch else "single", i, res))
        t.check(not bad, "py->C receipts, %d single and in one batch: C verifies" % n,
                "; ".join(bad))

    # ---- tampered receipt batches: both verifiers give the same reason
    rs = [make_receipt(node.id, i) for i in range(5)]
    good = [SignedReceipt.FromString(x) for x in sign_receipts(node, rs)]
    other_batch = [SignedReceipt.FromString(x)
                   for x in sign_receipts(node, [make_receipt(node.id, i) for i in range(5)])]

    def edit(fn, index=2):
        sr = SignedReceipt()
        sr.CopyFrom(good[index])
        fn(sr)
        return sr.SerializeToString()

    def setp(**fields):
        def fn(sr):
            for k, v in fields.items():
                if callable(v):
                    v = v(getattr(sr.batch, k))
                if v is None:
                    sr.batch.ClearField(k)
                else:
                    setattr(sr.batch, k, v)
        return fn

    def forged(sr):  # receipt changed, path and root recomputed: only the signature can tell
        sr.receipt = flip(sr.receipt, 20)
        path = [sr.batch.path[i:i + 32] for i in range(0, len(sr.batch.path), 32)]
        sr.batch.root = root_from_path(leaf_hash(sr.receipt), sr.batch.leaf_index,
                                       sr.batch.tree_size, path)

    def envelope_label(sr):
        sr.signature = sign(node, CTX_BATCH + struct.pack(">I", 5) + sr.batch.root)

    def swap_proof(sr):
        sr.batch.CopyFrom(other_batch[2].batch)
        sr.signature = other_batch[2].signature

    cases = [
        ("receipt batch as issued", OK, edit(lambda sr: None)),
        ("receipt batch: suite 2", "UNKNOWN_SUITE", edit(lambda sr: setattr(sr, "suite", 2))),
        ("receipt batch: 63-byte signature and tree_size 0 (length first)", "BAD_SIGNATURE",
         edit(lambda sr: (setattr(sr, "signature", sr.signature[:63]),
                          setattr(sr.batch, "tree_size", 0)))),
        ("receipt batch: signature byte flipped", "BAD_SIGNATURE",
         edit(lambda sr: setattr(sr, "signature", flip(sr.signature, 5)))),
        ("receipt batch: proof removed", "BAD_SIGNATURE", edit(lambda sr: sr.ClearField("batch"))),
        ("receipt batch: receipt byte flipped", "BAD_INCLUSION_PATH",
         edit(lambda sr: setattr(sr, "receipt", flip(sr.receipt, 20)))),
        ("receipt batch: receipt changed, root recomputed", "BAD_SIGNATURE", edit(forged)),
        ("receipt batch: leaf_index 2 -> 3", "BAD_INCLUSION_PATH", edit(setp(leaf_index=3))),
        ("receipt batch: leaf_index 2 -> 5 (= tree_size)", "BAD_INCLUSION_PATH",
         edit(setp(leaf_index=5))),
        ("receipt batch: tree_size 5 -> 6 (same path length)", "BAD_SIGNATURE",
         edit(setp(tree_size=6))),
        ("receipt batch: tree_size 5 -> 3 (path too long)", "BAD_INCLUSION_PATH",
         edit(setp(tree_size=3))),
        ("receipt batch: tree_size 0", "BAD_INCLUSION_PATH", edit(setp(tree_size=0))),
        ("receipt batch: tree_size 65537", "BAD_INCLUSION_PATH", edit(setp(tree_size=65537))),
        ("receipt batch: path byte flipped", "BAD_INCLUSION_PATH",
         edit(setp(path=lambda p: flip(p, 40)))),
        ("receipt batch: path one hash short", "BAD_INCLUSION_PATH",
         edit(setp(path=lambda p: p[:-32]))),
        ("receipt batch: path one hash long", "BAD_INCLUSION_PATH",
         edit(setp(path=lambda p: p + bytes(32)))),
        ("receipt batch: path of 31 bytes", "BAD_INCLUSION_PATH",
         edit(setp(path=lambda p: p[:31]))),
        ("receipt batch: root byte flipped", "BAD_INCLUSION_PATH",
         edit(setp(root=lambda r: flip(r, 0)))),
        ("receipt batch: no root", "BAD_INCLUSION_PATH", edit(setp(root=None))),
        ("receipt batch: proof and signature of another batch", "BAD_INCLUSION_PATH",
         edit(swap_proof)),
        ("receipt batch: envelope batch label over the root", "BAD_SIGNATURE",
         edit(envelope_label)),
        ("single receipt presented as a batch of 1", "BAD_SIGNATURE",
         (lambda sr: (sr.batch.CopyFrom(BatchProof(leaf_index=0, tree_size=1,
                                                    root=leaf_hash(sr.receipt))),
                      sr.SerializeToString())[1])(
             SignedReceipt.FromString(sign_receipts(node, rs[:1], batch=False)[0]))),
        ("receipt batch signed by another key", "BAD_SIGNATURE", sign_receipts(other, rs)[1]),
        ("receipt batch whose leaf is not a Receipt", "MALFORMED",
         sign_receipts(node, [b"\xff\xff\xff"])[0]),
    ]
    for what, want, data in cases:
        py = py_result(lambda: verify_receipt(data, node_pub))
        t.check(py == want, "Python: %s -> %s" % (what, want), py)
        c, _ = c_verify(data)
        t.check(c == want, "C:      %s -> %s" % (what, want), c)


def check_plain(received, plain):
    if received[2] != plain:
        raise Reject("PLAINTEXT_DIFFERS")


def check_c_messages(t, outdir, n, batch, plain, registry, recipient):
    """Verifies and opens C's OUTDIR/msg-<i> for i < N in Python; for a batch,
    rebuilds the tree from all N headers and compares root and paths."""
    envs = [read(os.path.join(outdir, "msg-%d.env" % i)) for i in range(n)]
    results = []
    for i, env in enumerate(envs):
        sealed = read(os.path.join(outdir, "msg-%d.payload" % i))
        with open(os.path.join(outdir, "msg-%d.txt" % i)) as f:
            info = parse_kv(f.read())
        try:
            e, h, got = receive(env, sealed, registry, recipient)
        except Reject as r:
            results.append("msg %d: %s" % (i, r))
            continue
        problems = []
        if got != plain:
            problems.append("plaintext")
        if info.get("header_hash") != b2b(e.header).hex():
            problems.append("header_hash")
        if (info.get("message_id") != h.message_id.hex() or info.get("to") != h.to_agency or
                info.get("signer_key_id") != h.signer_key_id.hex()):
            problems.append("message_id/to/signer_key_id")
        if h.case_ref != "案件-0001" or h.service_code != "CONFORMANCE-ECHO":
            problems.append("text fields %r %r" % (h.case_ref, h.service_code))
        if e.HasField("batch") != batch or info.get("batch") != str(int(batch)):
            problems.append("batch presence")
        if problems:
            results.append("msg %d: %s" % (i, ", ".join(problems)))
    if batch:
        es = [Envelope.FromString(x) for x in envs]
        leaves = [leaf_hash(x.header) for x in es]
        root = mth(leaves)
        for i, x in enumerate(es):
            if (x.batch.root != root or x.batch.leaf_index != i or x.batch.tree_size != n or
                    x.batch.path != b"".join(audit_path(i, leaves)) or
                    x.signature != es[0].signature):
                results.append("msg %d: proof differs from RFC 6962 PATH/MTH" % i)
    what = "C->py %s, %d bytes: verified%s, decrypted, fields agree" % (
        ("batch of %d" % n) if batch else "single", len(plain),
        ", root and paths equal RFC 6962" if batch else "")
    t.check(not results, what, "; ".join(results))


if __name__ == "__main__":
    sys.exit(main())
