// OpenBLAS from Debian's libopenblas-dev. cblas.h there also declares openblas_set_num_threads.
#include <cblas.h>
