// Just enough of CUDA for g++ to compile tinynet/kernels/cupy_gpu.cu as plain C++ (see cuda_host.py).
// Threads run one after another: correct for kernels where no two threads write the same element and
// nothing is shared between threads, which is what cupy_gpu.cu promises (and every kernel there obeys).
#include <algorithm>
#include <cmath>
#include <cstring>

struct tinynet_dim3 { unsigned x, y, z; };
static tinynet_dim3 blockIdx, threadIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline

static inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, sizeof f); return f; }
static inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, sizeof d); return d; }
template <typename T> static inline T atomicAdd(T* address, T value) { T old = *address; *address += value; return old; }
using std::exp;
using std::min;
using std::log;
using std::sqrt;
