/* What every public header wraps its declarations in: C linkage for C++ hosts, and
 * default visibility, so that librecur.so exports exactly the functions declared
 * under include/recur/ although its objects are built with -fvisibility=hidden (the
 * internal helpers stay hidden, and the Lua module exports luaopen_recur_core alone
 * through its version script, csrc/lua_core.map). */
#ifndef RECUR_EXPORT_H
#define RECUR_EXPORT_H

#if defined(__GNUC__)
#define RECUR_VISIBILITY_PUSH _Pragma("GCC visibility push(default)")
#define RECUR_VISIBILITY_POP _Pragma("GCC visibility pop")
#else
#define RECUR_VISIBILITY_PUSH
#define RECUR_VISIBILITY_POP
#endif

#ifdef __cplusplus
#define RECUR_BEGIN_DECLS extern "C" { RECUR_VISIBILITY_PUSH
#define RECUR_END_DECLS RECUR_VISIBILITY_POP }
#else
#define RECUR_BEGIN_DECLS RECUR_VISIBILITY_PUSH
#define RECUR_END_DECLS RECUR_VISIBILITY_POP
#endif

#endif
