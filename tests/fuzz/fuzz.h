/*
 * The fuzz targets: each file defines LLVMFuzzerTestOneInput for one
 * parser. Linked with libFuzzer (configure --enable-fuzzing, clang) they
 * fuzz; linked with replay.c they replay a corpus, which is how every seed
 * and every crash found stays a regression test in `make check`.
 */
#ifndef CRMB_FUZZ_H
#define CRMB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
