#ifndef FSCONF_CLZ4_SHIM_H
#define FSCONF_CLZ4_SHIM_H
/* LZ4's block API, as is: the functions Swift calls are plain C functions
 * (LZ4_compressBound is also a macro, LZ4_COMPRESSBOUND; the function is used). */
#include <lz4.h>
#endif
