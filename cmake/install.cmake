# Installation and packaging (packaging/README.md): what `cmake --install`
# puts where, and the .deb that `cpack -G DEB` makes from a build dir.
#
#   bin/                  gbxd gbxctl gbx-audit gbx-keygen gbx-send gbx-recv
#   include/gbx/          the public headers; gbx/v1/*.pb-c.h (generated, included by envelope.h)
#   lib/                  libgbx.a libgbxproto.a libgbxpb.a (static), pkgconfig/libgbx.pc
#   lib/systemd/system/   gbxd.service (hardened; runs as the system user gbx)
#   share/man/man{1,5,8}/ gbx-audit.1 gbx-keygen.1 gbxd.yaml.5 gbxd.8 gbxctl.8 (gzip -9n)
#   share/doc/gbx/        README.md ARCHITECTURE.md default-policy.yaml docs/*.md docs/ops/
#
# libgbx.pc and gbxd.service name absolute paths, so they are written at
# install time from the prefix then in force (cmake --install --prefix P, or
# /usr when cpack builds the .deb), not from the one of configure time.
include(GNUInstallDirs)

set(GBX_SYSTEMD_UNIT_DIR "lib/systemd/system"
    CACHE STRING "where gbxd.service goes (relative: under the install prefix)")

install(TARGETS gbxd gbxctl gbx-audit gbx-keygen gbx-send gbx-recv
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS gbx gbxproto gbxpb ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/gbx DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(FILES ${CMAKE_BINARY_DIR}/gen/gbx/v1/envelope.pb-c.h ${CMAKE_BINARY_DIR}/gen/gbx/v1/adapter.pb-c.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/gbx/v1)

# The manual pages, compressed as Debian wants them.
set(GBX_MAN_PAGES gbxd.8 gbxctl.8 gbx-audit.1 gbx-keygen.1 gbxd.yaml.5)
set(GBX_MAN_GZ)
foreach(page ${GBX_MAN_PAGES})
  set(src ${PROJECT_SOURCE_DIR}/docs/man/${page})
  set(gz ${CMAKE_BINARY_DIR}/man/${page}.gz)
  add_custom_command(
    OUTPUT ${gz}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND sh -c "gzip -9n -c \"$0\" > \"$1\"" ${src} ${gz}
    DEPENDS ${src}
    VERBATIM)
  list(APPEND GBX_MAN_GZ ${gz})
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  install(FILES ${gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(gbx-man ALL DEPENDS ${GBX_MAN_GZ})

install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/ARCHITECTURE.md
              ${PROJECT_SOURCE_DIR}/broker/default-policy.yaml
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
# docs/*.md and docs/ops (alerting rules, dashboard), whatever is there at install time
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs
        FILES_MATCHING PATTERN "*.md" PATTERN "*.yml" PATTERN "*.json" PATTERN "man" EXCLUDE)

# libgbx.pc and gbxd.service: @VAR@ filled in with the install-time prefix
# (relative GNUInstallDirs paths are joined to it; absolute ones kept).
install(CODE "
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  set(GBX_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(GBX_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(GBX_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(GBX_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(GBX_UNITDIR \"${GBX_SYSTEMD_UNIT_DIR}\")
  foreach(v GBX_BINDIR GBX_LIBDIR GBX_INCLUDEDIR GBX_UNITDIR)
    if(NOT IS_ABSOLUTE \"\${\${v}}\")
      set(\${v} \"\${CMAKE_INSTALL_PREFIX}/\${\${v}}\")
    endif()
  endforeach()
  configure_file(\"${PROJECT_SOURCE_DIR}/packaging/libgbx.pc.in\"
                 \"${CMAKE_BINARY_DIR}/packaging/libgbx.pc\" @ONLY)
  configure_file(\"${PROJECT_SOURCE_DIR}/packaging/gbxd.service.in\"
                 \"${CMAKE_BINARY_DIR}/packaging/gbxd.service\" @ONLY)
  file(INSTALL DESTINATION \"\${GBX_LIBDIR}/pkgconfig\" TYPE FILE
       FILES \"${CMAKE_BINARY_DIR}/packaging/libgbx.pc\")
  file(INSTALL DESTINATION \"\${GBX_UNITDIR}\" TYPE FILE
       FILES \"${CMAKE_BINARY_DIR}/packaging/gbxd.service\")
")

# ------------------------------------------------------------------ CPack
# cpack -G DEB in a build dir: gbx_<version>_<arch>.deb. The runtime
# dependencies come from dpkg-shlibdeps (package dpkg-dev); postinst needs
# adduser, the unit's ExecReload /bin/kill (procps). libgbx.pc refers to the
# -dev packages of what libgbx links with, hence the Suggests.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME gbx)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "gbx team")
set(CPACK_PACKAGE_CONTACT "gbx team")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "cross-boundary data exchange broker (HK SAR / Greater Bay Area)")
set(CPACK_PACKAGE_DESCRIPTION
    "gbx exchanges signed, end-to-end encrypted requests between government agencies on both sides
of the Hong Kong / Guangdong boundary: per-data-class policy, durable exactly-once delivery and
a tamper-evident audit trail. This package holds the broker gbxd (a hardened systemd service
running as the user gbx, state in /var/lib/gbx), the operators' gbxctl, the auditors' gbx-audit,
gbx-keygen, gbx-send and gbx-recv, and the static client library libgbx with its headers and
pkg-config file.")
set(CPACK_STRIP_FILES TRUE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "gbx team")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, procps")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "pkg-config, libzmq3-dev, libsodium-dev, libprotobuf-c-dev, libfyaml-dev")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/postinst ${PROJECT_SOURCE_DIR}/packaging/prerm
    ${PROJECT_SOURCE_DIR}/packaging/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
