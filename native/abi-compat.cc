// Keeps the addon loadable on devices whose libstdc++ is older than the toolchain's.
//
// GCC 11+ headers make std::allocator<T>::allocate() call std::__throw_bad_array_new_length(),
// a symbol first exported by libstdc++ in GLIBCXX_3.4.29. The official Node builds for ARM and
// many device images ship an older libstdc++, where dlopen() would fail with "version
// `GLIBCXX_3.4.29' not found". The addon is built without exceptions, so a throw there can
// only end the process anyway: a local, hidden definition binds the reference inside the
// addon and the dynamic requirement disappears (scripts/cross.mjs checks the symbol versions).
#include <cstdlib>
#include <new>

#if defined(__GLIBCXX__) && defined(_GLIBCXX_RELEASE) && _GLIBCXX_RELEASE >= 11
namespace std {
__attribute__((visibility("hidden"), noreturn)) void __throw_bad_array_new_length() { std::abort(); }
}  // namespace std
#endif
