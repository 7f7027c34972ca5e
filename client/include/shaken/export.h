/* shaken/export.h: SHAKEN_CLIENT_EXPORT marks the symbols libshakenclient exports. The library is
 * built with hidden visibility, so everything else (the generated protobuf and gRPC code linked
 * into it) stays private to it. Usable from C and C++. */
#ifndef SHAKEN_CLIENT_EXPORT_H_
#define SHAKEN_CLIENT_EXPORT_H_

#if defined(SHAKEN_CLIENT_BUILDING) && defined(__GNUC__)
#define SHAKEN_CLIENT_EXPORT __attribute__((visibility("default")))
#else
#define SHAKEN_CLIENT_EXPORT
#endif

#endif /* SHAKEN_CLIENT_EXPORT_H_ */
