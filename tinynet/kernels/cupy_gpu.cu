// tinynet's CUDA kernels: the same entry points as numpy_ref.py, the same numbers.
//
// NVRTC compiles this file at run time (cupy.RawModule, see cupy_gpu.py), once for T = float and once for
// T = double. tests/test_cuda_compile.py compiles it exactly as CuPy would, for sm_80 and sm_90, with any warning
// counted as an error; tests/cuda_host compiles the same text as plain C++ with gcc and runs it on the host
// against the NumPy reference.
//
// Rules every kernel here follows (they are what makes the host run an honest test):
// - one grid-stride loop over the elements it writes, so any grid covers any array;
// - no two threads write the same element (col2im and the max-pool backward are gathers, not scatters), so the
//   result does not depend on the order threads run in; the only atomics add the loss totals;
// - no shared memory and no __syncthreads;
// - every array is read as a flat C-contiguous buffer, except a pointer marked STRIDED (gemm's operands), read
//   through the strides passed beside it.

#define FOR_EACH(i, n) for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
                            i += (long long)blockDim.x * gridDim.x)

template <typename T> __device__ __forceinline__ T negative_infinity();
template <> __device__ __forceinline__ float negative_infinity<float>() { return __int_as_float(0xff800000); }
template <> __device__ __forceinline__ double negative_infinity<double>() {
    return __longlong_as_double(0xfff0000000000000LL);
}

template <typename T> __device__ __forceinline__ T quiet_nan();
template <> __device__ __forceinline__ float quiet_nan<float>() { return __int_as_float(0x7fc00000); }
template <> __device__ __forceinline__ double quiet_nan<double>() { return __longlong_as_double(0x7ff8000000000000LL); }

// "v wins over best" with NumPy's argmax rules: strictly larger wins (ties keep the first), and NaN beats
// everything that is not NaN (so the first NaN wins and the max is NaN, as np.maximum gives).
template <typename T> __device__ __forceinline__ bool beats(T v, T best) { return !(v <= best) && best == best; }

// -- convolution ------------------------------------------------------------------------------------------------
// x (N, C, H, W) -> cols (C*KH*KW, N*OH*OW). Element (k, r): row k = (channel, p, q) of the window,
// column r = (image, i, j) of the output pixel. Padding reads as 0.
template <typename T>
__global__ void im2col(const T* __restrict__ x, T* __restrict__ cols, int c, int h, int w, int kh, int kw,
                       int sh, int sw, int pt, int pl, int oh, int ow, long long npix, long long total) {
    FOR_EACH(i, total) {
        const long long k = i / npix, r = i % npix;
        const int q = (int)(k % kw), p = (int)(k / kw % kh);
        const long long ch = k / ((long long)kw * kh);
        const int j = (int)(r % ow), ii = (int)(r / ow % oh);
        const long long b = r / ((long long)ow * oh);
        const int y = ii * sh + p - pt, xx = j * sw + q - pl;
        cols[i] = (y >= 0 && y < h && xx >= 0 && xx < w) ? x[((b * c + ch) * h + y) * w + xx] : (T)0;
    }
}

// Calls visit(p, q, o) for every window that covers input pixel (y, x): (p, q) is the pixel's position in the
// window, o = i * OW + j the window's output pixel. The gathers below (col2im, the max-pool backward) share it.
template <typename F>
__device__ __forceinline__ void windows_covering(int y, int x, int kh, int kw, int sh, int sw, int pt, int pl, int oh,
                                                 int ow, F visit) {
    for (int p = 0; p < kh; ++p) {
        const int yy = y + pt - p;  // padded row of the window's top-left corner
        if (yy < 0 || yy % sh) continue;
        const int i = yy / sh;
        if (i >= oh) continue;
        for (int q = 0; q < kw; ++q) {
            const int xq = x + pl - q;
            if (xq < 0 || xq % sw) continue;
            const int j = xq / sw;
            if (j >= ow) continue;
            visit(p, q, (long long)i * ow + j);
        }
    }
}

// The adjoint of im2col, as a gather: one thread per input pixel adds up every column entry copied from it,
// in the reference's order (window position p, then q).
template <typename T>
__global__ void col2im(const T* __restrict__ cols, T* __restrict__ dx, int c, int h, int w, int kh, int kw,
                       int sh, int sw, int pt, int pl, int oh, int ow, long long npix, long long total) {
    FOR_EACH(i, total) {
        const int xx = (int)(i % w), y = (int)(i / w % h);
        const long long ch = i / ((long long)w * h) % c, b = i / ((long long)w * h * c);
        T acc = 0;
        windows_covering(y, xx, kh, kw, sh, sw, pt, pl, oh, ow, [&](int p, int q, long long o) {
            acc += cols[((ch * kh + p) * kw + q) * npix + b * oh * ow + o];
        });
        dx[i] = acc;
    }
}

// (F, N*OH*OW) + bias -> (N, F, OH, OW): the conv GEMM's output in NCHW, bias added on the way.
template <typename T>
__global__ void gemm_to_nchw(const T* __restrict__ src, const T* __restrict__ bias, T* __restrict__ y, int f,
                             long long plane, long long npix, long long total) {
    FOR_EACH(i, total) {
        const long long p = i % plane, ch = i / plane % f, b = i / (plane * f);
        y[i] = src[ch * npix + b * plane + p] + bias[ch];
    }
}

// (N, F, OH, OW) -> (F, N*OH*OW): the layout the conv backward GEMMs want.
template <typename T>
__global__ void nchw_to_gemm(const T* __restrict__ y, T* __restrict__ dst, int f, long long plane, long long npix,
                             long long total) {
    FOR_EACH(i, total) {
        const long long ch = i / npix, r = i % npix, b = r / plane, p = r % plane;
        dst[i] = y[(b * f + ch) * plane + p];
    }
}

// -- matrix product, for captured steps ---------------------------------------------------------------------------
// C (M, N) = A (M, K) @ B (K, N). fit replays the training step as a CUDA graph, and CuPy refuses every cuBLAS call
// while a stream captures (cupy_backends/cuda/libs/cublas.pyx, setStream), so a captured step multiplies here;
// eager steps keep cuBLAS (cupy_gpu.py, matmul).
//
// A and B are read through their strides (in elements), so a transposed view (cols.T, W.T) needs no copy.
// Each thread makes a 4 x 4 tile of C: per k it loads 4 values of A and 4 of B for 16 multiply-adds, kept in
// registers. Neighbouring threads take neighbouring tiles along N, so when B's rows are contiguous a warp loads
// 128 consecutive elements of B, and the same 4 of A.
//
// Split-K: a weight gradient (dW = dy2 @ cols.T) has few outputs (32 x 288) and a long K (every output pixel of
// the batch: 100,352 at batch 128), too few tiles to fill a GPU. Then `splits` threads share each tile: thread s
// sums k = s, s + splits, s + 2 splits, ... (neighbouring threads read neighbouring k, contiguous in both
// operands there) and writes its partial tile to part[s]; gemm_sum_splits adds the parts in order s = 0, 1, ...
// With splits = 1, part is C itself. Rows and columns past the edge of C read a clamped (valid) index and are
// never stored.
#define STRIDED  // marks a pointer read through strides passed beside it: the argument may be a non-contiguous view

template <typename T>
__global__ void gemm(const T* __restrict__ STRIDED a, const T* __restrict__ STRIDED b, T* __restrict__ part, int m,
                     int n, int k,
                     long long sam, long long sak, long long sbk, long long sbn, int splits, long long total) {
    const long long tiles_n = (n + 3) / 4;
    FOR_EACH(i, total) {
        const int s = (int)(i % splits);
        const long long tile = i / splits;
        const int m0 = (int)(tile / tiles_n) * 4, n0 = (int)(tile % tiles_n) * 4;
        long long row[4], col[4];
        for (int r = 0; r < 4; ++r) row[r] = (long long)min(m0 + r, m - 1) * sam;
        for (int c = 0; c < 4; ++c) col[c] = (long long)min(n0 + c, n - 1) * sbn;
        T acc[4][4] = {};
        for (long long kk = s; kk < k; kk += splits) {
            T av[4], bv[4];
            for (int r = 0; r < 4; ++r) av[r] = a[row[r] + kk * sak];
            for (int c = 0; c < 4; ++c) bv[c] = b[kk * sbk + col[c]];
            for (int r = 0; r < 4; ++r)
                for (int c = 0; c < 4; ++c) acc[r][c] += av[r] * bv[c];
        }
        T* out = part + (long long)s * m * n;
        for (int r = 0; r < 4 && m0 + r < m; ++r)
            for (int c = 0; c < 4 && n0 + c < n; ++c) out[(long long)(m0 + r) * n + n0 + c] = acc[r][c];
    }
}

// C = part[0] + part[1] + ... + part[splits - 1], in that order (the same sum on every run).
template <typename T>
__global__ void gemm_sum_splits(const T* __restrict__ part, T* __restrict__ c, int splits, long long total) {
    FOR_EACH(i, total) {
        T acc = part[i];
        for (int s = 1; s < splits; ++s) acc += part[s * total + i];
        c[i] = acc;
    }
}

// -- max pooling -------------------------------------------------------------------------------------------------
// One thread per output: the window's max and its position (0..KH*KW-1). Padding is -inf, so it never wins.
template <typename T>
__global__ void maxpool_forward(const T* __restrict__ x, T* __restrict__ y, signed char* __restrict__ argmax, int h,
                                int w, int kh, int kw, int sh, int sw, int pt, int pl, int oh, int ow,
                                long long total) {
    FOR_EACH(o, total) {
        const int j = (int)(o % ow), ii = (int)(o / ow % oh);
        const long long bc = o / ((long long)ow * oh);
        T best = negative_infinity<T>();
        int arg = 0;
        for (int p = 0; p < kh; ++p) {
            for (int q = 0; q < kw; ++q) {
                const int yy = ii * sh + p - pt, xx = j * sw + q - pl;
                const T v = (yy >= 0 && yy < h && xx >= 0 && xx < w) ? x[(bc * h + yy) * w + xx]
                                                                     : negative_infinity<T>();
                if ((p == 0 && q == 0) || beats(v, best)) {
                    best = v;
                    arg = p * kw + q;
                }
            }
        }
        y[o] = best;
        argmax[o] = (signed char)arg;
    }
}

// The way back, as a gather: one thread per input pixel adds the gradients of the windows it won.
template <typename T>
__global__ void maxpool_backward(const T* __restrict__ dy, const signed char* __restrict__ argmax,
                                 T* __restrict__ dx, int h, int w, int kh, int kw, int sh, int sw, int pt, int pl,
                                 int oh, int ow, long long total) {
    FOR_EACH(i, total) {
        const int xx = (int)(i % w), y = (int)(i / w % h);
        const long long plane = i / ((long long)w * h) * oh * ow;  // this image and channel's first output
        T acc = 0;
        windows_covering(y, xx, kh, kw, sh, sw, pt, pl, oh, ow, [&](int p, int q, long long o) {
            acc += dy[plane + o] * (argmax[plane + o] == p * kw + q ? (T)1 : (T)0);  // a multiply, as in NumPy
        });
        dx[i] = acc;
    }
}

// -- elementwise -------------------------------------------------------------------------------------------------
template <typename T>
__global__ void relu_forward(const T* __restrict__ x, T* __restrict__ y, long long n) {
    FOR_EACH(i, n) {
        const T v = x[i];
        y[i] = v <= (T)0 ? (T)0 : v;  // not "v > 0 ? v : 0": NaN must pass through
    }
}

template <typename T>
__global__ void relu_backward(const T* __restrict__ dy, const T* __restrict__ y, T* __restrict__ dx, long long n) {
    FOR_EACH(i, n) dx[i] = dy[i] * (y[i] > (T)0 ? (T)1 : (T)0);  // a multiply: NaN in dy stays NaN, as in NumPy
}

// One Adam step for one parameter, in place. The step count t and lr are read from device memory, so a
// captured CUDA graph computes each replay's own lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t) (in double, as the host).
template <typename T>
__global__ void adam_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
                            const double* __restrict__ t, const double* __restrict__ lr, double b1, double b2, T eps,
                            long long n) {
    const T lr_t = (T)(lr[0] * sqrt(1.0 - pow(b2, t[0])) / (1.0 - pow(b1, t[0])));
    const T tb1 = (T)b1, c1 = (T)(1.0 - b1), tb2 = (T)b2, c2 = (T)(1.0 - b2);
    FOR_EACH(i, n) {
        const T gi = g[i];
        const T mi = m[i] * tb1 + c1 * gi;
        const T vi = v[i] * tb2 + c2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr_t * mi / (sqrt(vi) + eps);
    }
}

// -- dropout -----------------------------------------------------------------------------------------------------
// A counter-based generator, so every backend draws the same masks and a checkpoint needs only (seed, calls):
// call number `calls` of a layer uses key = splitmix64(seed + calls * golden), and element i of its mask is the
// top 32 bits of splitmix64(key + (i + 1) * golden), kept when >= threshold = rate * 2^32.
__device__ __forceinline__ unsigned long long splitmix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

#define GOLDEN 0x9E3779B97F4A7C15ULL

template <typename T>
__global__ void dropout(const T* __restrict__ x, T* __restrict__ y, unsigned long long seed,
                        const unsigned long long* __restrict__ calls, unsigned long long threshold, T scale,
                        long long n) {
    const unsigned long long key = splitmix64(seed + calls[0] * GOLDEN);
    FOR_EACH(i, n) {
        const unsigned long long bits = splitmix64(key + (unsigned long long)(i + 1) * GOLDEN) >> 32;
        y[i] = x[i] * (bits >= threshold ? scale : (T)0);
    }
}

// -- the loss ----------------------------------------------------------------------------------------------------
// Softmax cross-entropy, one thread per row: the row's loss, its gradient (softmax - onehot) / N, and, when
// accumulate is 1, adds the loss and whether the argmax is the label into totals[0] and totals[1]. (A flag, not a
// NULL totals: CuPy cannot pass a NULL pointer argument.)
// A label outside 0..K-1 gives NaN (the caller validates labels; this keeps a bad one from reading elsewhere).
template <typename T>
__global__ void softmax_cross_entropy(const T* __restrict__ logits, const long long* __restrict__ labels,
                                      T* __restrict__ row_loss, T* __restrict__ dlogits, double* totals,
                                      int accumulate, int k, long long n) {
    FOR_EACH(r, n) {
        const T* z = logits + r * k;
        T* d = dlogits + r * k;
        T top = z[0];
        int arg = 0;
        for (int j = 1; j < k; ++j) {
            if (beats(z[j], top)) {
                top = z[j];
                arg = j;
            }
        }
        T sum = 0;
        for (int j = 0; j < k; ++j) sum += exp(z[j] - top);
        const long long label = labels[r];
        const bool valid = label >= 0 && label < k;
        const T loss = valid ? log(sum) - (z[valid ? label : 0] - top) : quiet_nan<T>();
        for (int j = 0; j < k; ++j) {
            const T prob = exp(z[j] - top) / sum;
            d[j] = valid ? (prob - (j == label ? (T)1 : (T)0)) / (T)n : quiet_nan<T>();
        }
        row_loss[r] = loss;
        if (accumulate) {
            atomicAdd(&totals[0], (double)loss);
            atomicAdd(&totals[1], arg == label ? 1.0 : 0.0);
        }
    }
}
