// OpenBLAS from Debian's libopenblas-dev. cblas.h there also declares openblas_set_num_threads and
// openblas_get_corename.
#include <cblas.h>

// The CPU features that decide which OpenBLAS kernels suit this machine, as the compiler's runtime
// reads them from CPUID (and, for AVX and AVX-512, whether the OS saves their registers).
enum {
    TRIBUTARY_CPU_AVX = 1 << 0,
    TRIBUTARY_CPU_AVX2 = 1 << 1,
    TRIBUTARY_CPU_FMA = 1 << 2,
    TRIBUTARY_CPU_AVX512F = 1 << 3,
    TRIBUTARY_CPU_AVX512BW = 1 << 4,
    TRIBUTARY_CPU_AVX512VL = 1 << 5,
    TRIBUTARY_CPU_AVX512DQ = 1 << 6,
    TRIBUTARY_CPU_AVX512CD = 1 << 7,
    TRIBUTARY_CPU_AVX512BF16 = 1 << 8,
    TRIBUTARY_CPU_INTEL = 1 << 16,
    TRIBUTARY_CPU_AMD = 1 << 17,
};

static inline unsigned tributary_cpu_features(void) {
    unsigned features = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx")) features |= TRIBUTARY_CPU_AVX;
    if (__builtin_cpu_supports("avx2")) features |= TRIBUTARY_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) features |= TRIBUTARY_CPU_FMA;
    if (__builtin_cpu_supports("avx512f")) features |= TRIBUTARY_CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) features |= TRIBUTARY_CPU_AVX512BW;
    if (__builtin_cpu_supports("avx512vl")) features |= TRIBUTARY_CPU_AVX512VL;
    if (__builtin_cpu_supports("avx512dq")) features |= TRIBUTARY_CPU_AVX512DQ;
    if (__builtin_cpu_supports("avx512cd")) features |= TRIBUTARY_CPU_AVX512CD;
    if (__builtin_cpu_supports("avx512bf16")) features |= TRIBUTARY_CPU_AVX512BF16;
    if (__builtin_cpu_is("intel")) features |= TRIBUTARY_CPU_INTEL;
    if (__builtin_cpu_is("amd")) features |= TRIBUTARY_CPU_AMD;
#endif
    return features;
}
