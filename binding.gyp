{
  # The addon carries a private nghttp2 (Debian 13's 1.64 source, see scripts/nghttp2.sh),
  # compiled with hidden visibility and linked statically: the .node neither imports nor
  # exports any nghttp2_ symbol, so Node's own nghttp2 and a system libnghttp2 never mix in.
  'variables': {
    'nghttp2_dir%': '<!(bash scripts/nghttp2.sh dir)',
  },
  'target_defaults': {
    'cflags': ['-fPIC', '-fvisibility=hidden', '-ffunction-sections', '-fdata-sections', '-O2'],
    'cflags!': ['-O3'],
  },
  'targets': [
    {
      'target_name': 'nghttp2',
      'type': 'static_library',
      'sources': ['<!@(bash scripts/nghttp2.sh sources)'],
      'include_dirs': ['<(nghttp2_dir)/lib/includes', '<(nghttp2_dir)/lib'],
      # No config.h: the few feature macros the library reads are given here. Without the two
      # header macros htonl/ntohl are implicitly declared (wrong prototypes on 64-bit).
      'defines': ['NGHTTP2_STATICLIB', 'HAVE_ARPA_INET_H=1', 'HAVE_NETINET_IN_H=1',
                  'HAVE_CLOCK_GETTIME=1', 'HAVE_DECL_CLOCK_MONOTONIC=1'],
      'cflags': ['-Werror=implicit-function-declaration', '-Wno-unused-parameter',
                 '-Wno-missing-field-initializers'],
      'direct_dependent_settings': {
        'include_dirs': ['<(nghttp2_dir)/lib/includes'],
        'defines': ['NGHTTP2_STATICLIB'],
      },
    },
    {
      'target_name': 'cic_h2',
      'sources': ['native/binding.cc', 'native/session.cc', 'native/abi-compat.cc', 'native/alarm.cc'],
      'dependencies': ['nghttp2'],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': ['NAPI_VERSION=8', 'NAPI_DISABLE_CPP_EXCEPTIONS', 'NODE_ADDON_API_DISABLE_DEPRECATED'],
      'cflags_cc': ['-std=c++17', '-fno-exceptions', '-fno-rtti', '-fvisibility-inlines-hidden'],
      'cflags_cc!': ['-fno-rtti', '-std=gnu++17', '-std=gnu++20'],
      'ldflags': ['-Wl,--exclude-libs,ALL', '-Wl,--version-script=<(module_root_dir)/native/exports.map', '-Wl,--gc-sections', '-Wl,-z,relro', '-Wl,-z,now'],
    },
  ],
}
