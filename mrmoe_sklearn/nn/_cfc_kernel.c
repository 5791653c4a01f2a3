/*
 * The CfC experts over their whole sequences, forward and backward, in float32 (one call runs
 * every expert: cfc_forward_experts, cfc_backward_experts).
 *
 * The same update as mrmoe_sklearn/nn/cells.py (ncps "default" mode):
 *     th = tanh(LI * (x_t + h W_h))
 *     z  = b_o + th W_o            (W_o already scaled by LeCun's outer 1.7159)
 *     f1 = tanh(z[0:H]), f2 = tanh(z[H:2H]), s = sigmoid(z[2H:3H] dt + z[3H:4H])
 *     h' = f1 + s (f2 - f1), kept as h where the step is padding (v = 0)
 *
 * A step of a small cell costs a dozen tensor operations in PyTorch, each of a
 * few microseconds; here a step is a few loops over the batch with nothing
 * between them. Loaded through ctypes (mrmoe_sklearn/nn/kernel.py), which
 * compiles this file on first use.
 *
 * Threads (OpenMP, when the compiler takes -fopenmp; else one thread): the
 * samples are cut into fixed units of BLOCK samples (unit u holds samples
 * u BLOCK to u BLOCK + BLOCK - 1, whatever the thread count) and each thread
 * runs a contiguous range of whole units over all the steps. Samples never
 * interact within a step, so a sample's arithmetic is that of one thread: the
 * states and the input gradients are bit-identical for any thread count. The
 * weights' gradients, sums over samples, are summed per unit into the unit's
 * own buffer and the units' sums then added in unit order: bit-identical too.
 * There is one parallel region per call (no barrier per step).
 *
 * At the end of the file: the per-channel summary statistics of series (summary.py) and their
 * quantile-bin encoding (_data.py), the other computations that many small array operations
 * made slow.
 */
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define LECUN_INNER 0.666f

/* VW floats (and VW int32) in a vector register: GCC/Clang vector extensions, any alignment;
   16 where the target has AVX-512, else 8. The activations are written on these so that
   they vectorise on every target (plain loops of selects and clamps did not, without
   AVX-512). */
#ifdef __AVX512F__
#define VW 16
#else
#define VW 8
#endif
/* VD = VW / 2 doubles (and int64) in a register: the summary statistics' vectors */
#define VD (VW / 2)
typedef float vf __attribute__((vector_size(4 * VW), aligned(4)));
typedef int32_t vi __attribute__((vector_size(4 * VW), aligned(4)));
typedef double vd __attribute__((vector_size(8 * VD), aligned(8)));
typedef int64_t vl __attribute__((vector_size(8 * VD), aligned(8)));
typedef float vfd __attribute__((vector_size(4 * VD), aligned(4)));

static inline vf v_select(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }
static inline vd vd_select(vl mask, vd a, vd b) { return (vd)((mask & (vl)a) | (~mask & (vl)b)); }

/* exp(x), Cephes' range reduction and polynomial; relative error about 2e-7. */
static inline vf v_exp(vf x) {
    const vf hi = (vf){} + 88.3762626647949f, lo = (vf){} - 87.3365447504019f;
    x = v_select(x > hi, hi, x);
    x = v_select(x < lo, lo, x);
    /* n = round(x / ln 2): adding and subtracting 1.5 * 2^23 rounds to an integer */
    const vf n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    vf r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    vf p = (vf){} + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const vf y = p * r * r + r + 1.0f;
    const vi bits = (__builtin_convertvector(n, vi) + 127) << 23; /* 2^n */
    return y * (vf)bits;
}

/* tanh(x): Cephes' odd polynomial for |x| < 0.625, where 1 - 2 / (exp(2x) + 1) would cancel
   (a lower threshold lost up to 4 bits just above it); that formula beyond. */
static inline vf v_tanh(vf x) {
    const vf z = x * x;
    vf p = (vf){} - 5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    const vf near = p * z * x + x;
    const vf far = 1.0f - 2.0f / (v_exp(2.0f * x) + 1.0f);
    return v_select(z < 0.390625f, near, far);
}

static inline vf v_sigmoid(vf x) { return 1.0f / (1.0f + v_exp(-x)); }

/* out[i] = tanh(scale * in[i]) for i < n (out may be in). */
static void tanh_of(int64_t n, const float *in, float scale, float *out) {
    int64_t i = 0;
    for (; i + VW <= n; i += VW) *(vf *)(out + i) = v_tanh(scale * *(const vf *)(in + i));
    if (i < n) {
        vf t = {};
        memcpy(&t, in + i, (n - i) * sizeof(float));
        t = v_tanh(scale * t);
        memcpy(out + i, &t, (n - i) * sizeof(float));
    }
}

/* out[i] = sigmoid(a[i] * dt + b[i]) for i < n. */
static void sigmoid_of(int64_t n, const float *a, float dt, const float *b, float *out) {
    int64_t i = 0;
    for (; i + VW <= n; i += VW) *(vf *)(out + i) = v_sigmoid(*(const vf *)(a + i) * dt + *(const vf *)(b + i));
    if (i < n) {
        vf ta = {}, tb = {};
        memcpy(&ta, a + i, (n - i) * sizeof(float));
        memcpy(&tb, b + i, (n - i) * sizeof(float));
        ta = v_sigmoid(ta * dt + tb);
        memcpy(out + i, &ta, (n - i) * sizeof(float));
    }
}

static inline __attribute__((always_inline)) void row_times(int64_t n_in, int64_t n_out, const float *restrict a,
                                                            const float *restrict W, float *restrict out, const int nv) {
    /* out[:] += a @ W with n_out = VW nv: the row's sums stay in registers over the n_in products */
    vf acc[8];
    for (int j = 0; j < nv; j++) acc[j] = *(const vf *)(out + VW * j);
    for (int64_t i = 0; i < n_in; i++) {
        const float ai = a[i];
        const float *restrict w = W + i * n_out;
        for (int j = 0; j < nv; j++) acc[j] += ai * *(const vf *)(w + VW * j);
    }
    for (int j = 0; j < nv; j++) *(vf *)(out + VW * j) = acc[j];
}

static inline __attribute__((always_inline)) void two_rows_times(int64_t n_in, int64_t n_out, const float *restrict a,
                                                                 int64_t lda, const float *restrict W,
                                                                 float *restrict out, const int nv) {
    /* row_times for two rows at once (nv <= 4): twice the independent sums in flight, each
       weight vector loaded once for both */
    vf acc0[4], acc1[4];
    for (int j = 0; j < nv; j++) {
        acc0[j] = *(const vf *)(out + VW * j);
        acc1[j] = *(const vf *)(out + n_out + VW * j);
    }
    for (int64_t i = 0; i < n_in; i++) {
        const float a0 = a[i], a1 = a[lda + i];
        const float *restrict w = W + i * n_out;
        for (int j = 0; j < nv; j++) {
            const vf wj = *(const vf *)(w + VW * j);
            acc0[j] += a0 * wj;
            acc1[j] += a1 * wj;
        }
    }
    for (int j = 0; j < nv; j++) {
        *(vf *)(out + VW * j) = acc0[j];
        *(vf *)(out + n_out + VW * j) = acc1[j];
    }
}

static inline __attribute__((always_inline)) void row_as_pair(int64_t n_in, int64_t n_out, const float *restrict a,
                                                              const float *restrict W, float *restrict out,
                                                              const int nv) {
    /* row_times for a row without a partner, by the pairs' arithmetic (the row taken twice): the
       compiler schedules the two differently (with one vector of outputs, GCC's row_times rounded
       otherwise), and a sample's results must not depend on whether its row has a partner, that
       is on the batch it is computed in */
    float pair[2 * 4 * VW];
    memcpy(pair, out, n_out * sizeof(float));
    memcpy(pair + n_out, out, n_out * sizeof(float));
    two_rows_times(n_in, n_out, a, 0, W, pair, nv);
    memcpy(out, pair, n_out * sizeof(float));
}

/* out[b, :] += a[b, :] @ W for a (B, n_in) with row stride lda, W (n_in, n_out), out (B, n_out).
   A row's sums are the same whatever the other rows (taken in pairs where n_out <= 4 VW). */
static void rows_times(int64_t B, int64_t n_in, int64_t n_out, const float *restrict a, int64_t lda,
                       const float *restrict W, float *restrict out) {
#define ROWS(NV) \
    case NV: \
        for (int64_t b = 0; b < B; b++) row_times(n_in, n_out, a + b * lda, W, out + b * n_out, NV); \
        return;
#define ROW_PAIRS(NV) \
    case NV: \
        for (b = 0; b + 1 < B; b += 2) two_rows_times(n_in, n_out, a + b * lda, lda, W, out + b * n_out, NV); \
        if (b < B) row_as_pair(n_in, n_out, a + b * lda, W, out + b * n_out, NV); \
        return;
    if (n_out % VW == 0) {
        int64_t b;
        switch (n_out / VW) { ROW_PAIRS(1) ROW_PAIRS(2) ROW_PAIRS(3) ROW_PAIRS(4) ROWS(5) ROWS(6) ROWS(7) ROWS(8) default: break; }
    }
#undef ROWS
#undef ROW_PAIRS
    for (int64_t b = 0; b < B; b++) {
        const float *restrict ab = a + b * lda;
        float *restrict ob = out + b * n_out;
        for (int64_t i = 0; i < n_in; i++) {
            const float ai = ab[i];
            const float *restrict w = W + i * n_out;
            for (int64_t o = 0; o < n_out; o++) ob[o] += ai * w[o];
        }
    }
}

/* out[:] += a @ W for one row that is always computed on its own (a sample's own product, never
   a batch's row): row_times without the pairs' detour. */
static void one_row_times(int64_t n_in, int64_t n_out, const float *restrict a, const float *restrict W,
                          float *restrict out) {
    if (n_out % VW == 0 && n_out <= 8 * VW) {
        switch (n_out / VW) {
#define ONE_ROW(NV) \
    case NV: \
        row_times(n_in, n_out, a, W, out, NV); \
        return;
            ONE_ROW(1) ONE_ROW(2) ONE_ROW(3) ONE_ROW(4) ONE_ROW(5) ONE_ROW(6) ONE_ROW(7) ONE_ROW(8)
#undef ONE_ROW
        default:
            break;
        }
    }
    rows_times(1, n_in, n_out, a, n_in, W, out);
}

/* Samples processed together in a step (their intermediate values: about 10 KB), and the
   unit of work of a thread: thread ranges are made of whole blocks. */
#define BLOCK 16

/* Whether this build runs threads (compiled with OpenMP). */
int cfc_threaded(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* Flushing of denormal floats to zero is a setting of each thread (x86: FTZ, with DAZ where the
   processor has it, in MXCSR, as torch.set_flush_denormal sets them; AArch64: FZ in FPCR). torch
   sets it in the calling thread only, while the OpenMP threads (torch's, where this library
   shares its runtime, and this kernel's) keep what they inherited from the thread that started
   them. */
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define FLUSH_BITS 0x8040u /* FTZ | DAZ */
#define FLUSH_ON 0x8000u   /* FTZ: what counts as flushing */
static uint64_t flush_bits(void) { return _mm_getcsr() & FLUSH_BITS; }
static void set_flush_bits(uint64_t bits) { _mm_setcsr((_mm_getcsr() & ~FLUSH_BITS) | (unsigned)bits); }
#define HAS_FLUSH 1
#elif defined(__aarch64__)
#define FLUSH_BITS ((uint64_t)1 << 24) /* FZ */
#define FLUSH_ON FLUSH_BITS
static uint64_t fpcr(void) {
    uint64_t r;
    __asm__ volatile("mrs %0, fpcr" : "=r"(r));
    return r;
}
static uint64_t flush_bits(void) { return fpcr() & FLUSH_BITS; }
static void set_flush_bits(uint64_t bits) {
    const uint64_t r = (fpcr() & ~FLUSH_BITS) | bits;
    __asm__ volatile("msr fpcr, %0" : : "r"(r));
}
#define HAS_FLUSH 1
#else
#define HAS_FLUSH 0
#endif

/* With follow = 1, every thread of the calling thread's OpenMP regions of n_threads threads takes
   the calling thread's setting; with follow = 0 nothing changes. Returns how many of those threads
   flush (afterwards), or -1 where the processor has no such setting. */
int64_t flush_denormals(int64_t n_threads, int64_t follow) {
#if HAS_FLUSH
    const uint64_t bits = flush_bits();
    int64_t flushing = 0;
    const int nt = n_threads < 1 ? 1 : (int)n_threads;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) reduction(+ : flushing)
#endif
    {
        if (follow) set_flush_bits(bits);
        flushing += (flush_bits() & FLUSH_ON) != 0;
    }
    return flushing;
#else
    (void)n_threads, (void)follow;
    return -1;
#endif
}

/* The threads a call runs (at most one per unit, at least one). */
static int team_size(int64_t n_threads, int64_t n_units) {
    int64_t nt = n_threads < n_units ? n_threads : n_units;
    return nt < 1 ? 1 : (int)nt;
}

/* Runs body(first sample, end sample, thread index) for the calling threads' ranges of whole
   units: nt threads with OpenMP, else one range of all the samples. */
#ifdef _OPENMP
#define FOR_RANGES(B, nt, body) \
    do { \
        const int64_t n_units_ = ((B) + BLOCK - 1) / BLOCK; \
        _Pragma("omp parallel num_threads(nt) if (nt > 1)") { \
            const int64_t id_ = omp_get_thread_num(), team_ = omp_get_num_threads(); \
            const int64_t b_lo = id_ * n_units_ / team_ * BLOCK; \
            const int64_t b_up = (id_ + 1) * n_units_ / team_ * BLOCK; \
            const int64_t b_hi = b_up < (B) ? b_up : (B); \
            const int64_t tid = id_; \
            (void)tid; \
            if (b_lo < b_hi) { body; } \
        } \
    } while (0)
#else
#define FOR_RANGES(B, nt, body) \
    do { \
        (void)(nt); \
        const int64_t b_lo = 0, b_hi = (B), tid = 0; \
        (void)tid; \
        if (b_lo < b_hi) { body; } \
    } while (0)
#endif

/* One sample's activations [f1, f2, s] from the heads' pre-activations z, and its new state. */
static inline void heads(int64_t H, const float *restrict z, const float dt, const float v, const float *restrict h,
                         float *restrict act, float *restrict out) {
    tanh_of(2 * H, z, 1.0f, act);
    sigmoid_of(H, z + 2 * H, dt, z + 3 * H, act + 2 * H);
    if (v == 1.0f) {
        for (int64_t i = 0; i < H; i++) out[i] = act[i] + act[2 * H + i] * (act[H + i] - act[i]);
    } else { /* padding (v = 0) keeps the state exactly */
        for (int64_t i = 0; i < H; i++) out[i] = h[i] + v * (act[i] + act[2 * H + i] * (act[H + i] - act[i]) - h[i]);
    }
}

/* The forward for samples b_lo to b_hi - 1 (b_lo a multiple of BLOCK); scratch: one thread's. */
static void forward_range(int64_t n, int64_t B, int64_t H, int64_t U, const float *x, int64_t xs_t, int64_t xs_b,
                          const float *dt, const float *v, const float *h0, const float *Wh, const float *Wo,
                          const float *bo, float *hs, float *th, float *act, float *scratch, int64_t b_lo,
                          int64_t b_hi) {
    const int64_t H4 = 4 * H, H3 = 3 * H;
    const int64_t rows = B < BLOCK ? B : BLOCK;
    float *z = scratch;
    float *th_step = scratch + rows * H4;
    float *act_step = th_step + rows * U;
    for (int64_t t = 0; t < n; t++) {
        const float *h = t ? hs + (t - 1) * B * H : h0;
        const float *xt = x + t * xs_t, *dtt = dt + t * B, *vt = v ? v + t * B : NULL;
        /* a block of samples at a time: its intermediate values stay in the first-level cache */
        for (int64_t b0 = b_lo; b0 < b_hi; b0 += BLOCK) {
            const int64_t nb = b_hi - b0 < BLOCK ? b_hi - b0 : BLOCK;
            const float *hb = h + b0 * H;
            float *out = hs + (t * B + b0) * H;
            float *tht = th ? th + (t * B + b0) * U : th_step;
            float *at = act ? act + (t * B + b0) * H3 : act_step;
            for (int64_t b = 0; b < nb; b++) memcpy(tht + b * U, xt + (b0 + b) * xs_b, U * sizeof(float));
            rows_times(nb, H, U, hb, H, Wh, tht);
            tanh_of(nb * U, tht, LECUN_INNER, tht);
            for (int64_t b = 0; b < nb; b++) memcpy(z + b * H4, bo, H4 * sizeof(float));
            rows_times(nb, U, H4, tht, U, Wo, z);
            for (int64_t b = 0; b < nb; b++)
                heads(H, z + b * H4, dtt[b0 + b], vt ? vt[b0 + b] : 1.0f, hb + b * H, at + b * H3, out + b * H);
        }
    }
}

/* Floats of scratch a forward call needs (all its threads). */
int64_t cfc_forward_scratch(int64_t B, int64_t H, int64_t U, int64_t n_threads) {
    const int64_t rows = B < BLOCK ? B : BLOCK;
    return team_size(n_threads, (B + BLOCK - 1) / BLOCK) * rows * (U + 7 * H);
}

/*
 * Forward of K experts over their own steps, in one parallel region. Expert k takes n[k] steps
 * of a batch of B: x[k] (n[k], B, U) with strides (xs_t[k], xs_b[k], 1); dt[k], v[k] (n[k], B),
 * v[k] NULL when every step is valid; h0 (K, B, H), Wh (K, H, U), Wo (K, U, 4H), bo (K, 4H)
 * contiguous; hs[k] (n[k], B, H) out. th[k] (n[k], B, U) and act[k] (n[k], B, 3H) =
 * [f1, f2, s] are written unless th, act are NULL (for the backward); scratch
 * (cfc_forward_scratch floats) holds the heads' pre-activations and, without th and act, one
 * step's. n_threads: threads to run (see the top of the file). A sample's arithmetic does not
 * depend on K or on the other experts: one expert's call gives its results.
 */
void cfc_forward_experts(int64_t K, const int64_t *n, int64_t B, int64_t H, int64_t U, const float **x,
                         const int64_t *xs_t, const int64_t *xs_b, const float **dt, const float **v,
                         const float *h0, const float *Wh, const float *Wo, const float *bo, float **hs,
                         float **th, float **act, float *scratch, int64_t n_threads) {
    const int64_t per_thread = (B < BLOCK ? B : BLOCK) * (U + 7 * H), H4 = 4 * H;
    const int nt = team_size(n_threads, (B + BLOCK - 1) / BLOCK);
    FOR_RANGES(B, nt,
               for (int64_t k = 0; k < K; k++) forward_range(n[k], B, H, U, x[k], xs_t[k], xs_b[k], dt[k], v[k],
                                                            h0 + k * B * H, Wh + k * H * U, Wo + k * U * H4,
                                                            bo + k * H4, hs[k], th ? th[k] : NULL,
                                                            act ? act[k] : NULL, scratch + tid * per_thread,
                                                            b_lo, b_hi));
}

/* One sample's G = [d ff1, d ff2, d time_a, d time_b] from the gradient g + carry by its new
   state; carry becomes what a padded step passes back unchanged. */
static inline void heads_grad(int64_t H, const float *restrict g, const float *restrict act, const float v,
                              const float dt, float *restrict G, float *restrict carry) {
    const float *restrict f1 = act, *restrict f2 = act + H, *restrict s = act + 2 * H;
    for (int64_t i = 0; i < H; i++) {
        const float gh = g[i] + carry[i];
        const float gn = gh * v;
        const float dtb = s[i] * (1.0f - s[i]) * (f2[i] - f1[i]) * gn;
        G[i] = (1.0f - f1[i] * f1[i]) * (1.0f - s[i]) * gn;
        G[H + i] = (1.0f - f2[i] * f2[i]) * s[i] * gn;
        G[2 * H + i] = dtb * dt;
        G[3 * H + i] = dtb;
        carry[i] = gh - gn;
    }
}

/* acc (n_in, n_out) += a^T @ W for a (nb, n_in) with row stride lda, W (nb, n_out): a's
   block transposed into aT (n_in, nb), then row products. */
static void add_outer(int64_t nb, int64_t n_in, int64_t n_out, const float *restrict a, int64_t lda,
                      const float *restrict W, float *restrict aT, float *restrict acc) {
    for (int64_t b = 0; b < nb; b++)
        for (int64_t i = 0; i < n_in; i++) aT[i * nb + b] = a[b * lda + i];
    rows_times(n_in, nb, n_out, aT, nb, W, acc);
}

/* Floats of one unit's weight-gradient sums: Wh (H, U), Wo (U, 4H), bo (4H). */
static int64_t unit_floats(int64_t H, int64_t U) { return H * U + U * 4 * H + 4 * H; }

/* The backward for samples b_lo to b_hi - 1 (b_lo a multiple of BLOCK). */
static void backward_range(int64_t n, int64_t B, int64_t H, int64_t U, const float *g, const float *dt,
                           const float *v, const float *th, const float *act, const float *hs, const float *h0,
                           const float *WoT, const float *WhT, float *P, float *carry, float *sums,
                           float *scratch, int64_t b_lo, int64_t b_hi) {
    const int64_t H4 = 4 * H, H3 = 3 * H, per_unit = unit_floats(H, U);
    float *Gb = scratch;             /* (BLOCK, 4H) */
    float *aT = scratch + BLOCK * H4; /* (max(U, H), BLOCK) */
    memset(sums + b_lo / BLOCK * per_unit, 0, ((b_hi - b_lo + BLOCK - 1) / BLOCK) * per_unit * sizeof(float));
    for (int64_t t = n - 1; t >= 0; t--) {
        const float *gt = g + t * B * H, *at = act + t * B * H3, *tht = th + t * B * U;
        const float *dtt = dt + t * B;
        const float *hprev = t ? hs + (t - 1) * B * H : h0;
        float *Pt = P + t * B * U;
        for (int64_t b0 = b_lo; b0 < b_hi; b0 += BLOCK) {
            const int64_t nb = b_hi - b0 < BLOCK ? b_hi - b0 : BLOCK;
            float *Pb = Pt + b0 * U, *cb = carry + b0 * H;
            float *sWh = sums + b0 / BLOCK * per_unit, *sWo = sWh + H * U, *sbo = sWo + U * H4;
            const float *thb = tht + b0 * U;
            for (int64_t b = 0; b < nb; b++)
                heads_grad(H, gt + (b0 + b) * H, at + (b0 + b) * H3, v ? v[t * B + b0 + b] : 1.0f, dtt[b0 + b],
                           Gb + b * H4, cb + b * H);
            memset(Pb, 0, nb * U * sizeof(float));
            rows_times(nb, H4, U, Gb, H4, WoT, Pb);
            for (int64_t i = 0; i < nb * U; i++) Pb[i] *= LECUN_INNER * (1.0f - thb[i] * thb[i]);
            rows_times(nb, U, H, Pb, U, WhT, cb);
            /* the weights' gradients, summed into this unit's buffer */
            add_outer(nb, U, H4, thb, U, Gb, aT, sWo);
            for (int64_t b = 0; b < nb; b++)
                for (int64_t i = 0; i < H4; i++) sbo[i] += Gb[b * H4 + i];
            add_outer(nb, H, U, hprev + b0 * H, H, Pb, aT, sWh);
        }
    }
}

/* Floats of scratch a backward call of K experts needs (all its threads, and the units' sums). */
int64_t cfc_backward_experts_scratch(int64_t K, int64_t B, int64_t H, int64_t U, int64_t n_threads) {
    const int64_t n_units = (B + BLOCK - 1) / BLOCK;
    const int64_t per_thread = BLOCK * (4 * H + (U > H ? U : H));
    return team_size(n_threads, n_units) * per_thread + K * n_units * unit_floats(H, U);
}

/*
 * Backward of the same K experts, each over its steps last to first, in one parallel region.
 * g[k] (n[k], B, H): the loss' gradient by each output state; th[k], act[k] as written by the
 * forward, hs[k] its states, h0 (K, B, H) the initial states; WoT (K, 4H, U), WhT (K, U, H):
 * the weights transposed. Writes P[k] (n[k], B, U), the gradient by the backbone's input half,
 * and the weights' gradients gWh (K, H, U), gWo (K, U, 4H), gbo (K, 4H). carry (K, B, H): on
 * entry the gradient by the last states from later steps (zeros usually), on return the
 * gradient by h0. All of (K, ...) contiguous; scratch: cfc_backward_experts_scratch floats.
 * As in the forward, one expert's call gives its results.
 */
void cfc_backward_experts(int64_t K, const int64_t *n, int64_t B, int64_t H, int64_t U, const float **g,
                          const float **dt, const float **v, const float **th, const float **act,
                          const float **hs, const float *h0, const float *WoT, const float *WhT, float **P,
                          float *carry, float *gWh, float *gWo, float *gbo, float *scratch, int64_t n_threads) {
    const int64_t n_units = (B + BLOCK - 1) / BLOCK, per_unit = unit_floats(H, U), H4 = 4 * H;
    const int64_t per_thread = BLOCK * (H4 + (U > H ? U : H));
    const int nt = team_size(n_threads, n_units);
    float *sums = scratch + nt * per_thread;
    FOR_RANGES(B, nt,
               for (int64_t k = 0; k < K; k++) backward_range(n[k], B, H, U, g[k], dt[k], v[k], th[k], act[k], hs[k],
                                                             h0 + k * B * H, WoT + k * H4 * U, WhT + k * U * H, P[k],
                                                             carry + k * B * H, sums + k * n_units * per_unit,
                                                             scratch + tid * per_thread, b_lo, b_hi));
    /* each expert's units' sums added in unit order: the same for any thread count */
    for (int64_t k = 0; k < K; k++) {
        float *out[3] = {gWh + k * H * U, gWo + k * U * H4, gbo + k * H4};
        const float *ks = sums + k * n_units * per_unit;
        const int64_t offset[3] = {0, H * U, H * U + U * H4}, size[3] = {H * U, U * H4, H4};
        for (int j = 0; j < 3; j++) {
            for (int64_t i = 0; i < size[j]; i++) {
                float total = 0.0f;
                for (int64_t u = 0; u < n_units; u++) total += ks[u * per_unit + offset[j] + i];
                out[j][i] = total;
            }
        }
    }
}

/*
 * Per-channel summary statistics of series (mrmoe_sklearn/summary.py, which defines them and
 * has the same computation in numpy for where this library is not built), in float64:
 *     out[i, f, :] = mean, std, min, max, first, last, count, slope, time_since_last
 * of the observed values (not NaN, on a valid step) of channel f of sample i. values is
 * (n, T, F), float32 (f32 = 1: read as they are, no float64 copy of a large panel) or float64,
 * times (n, T) or NULL (steps at 0, 1, 2, ...), valid (n, T) bytes. Two passes
 * over each sample; threads take whole samples, so the results do not depend on n_threads.
 * scratch holds ACCUMULATORS F doubles per thread.
 */
enum { S_MEAN, S_STD, S_MIN, S_MAX, S_FIRST, S_LAST, S_COUNT, S_SLOPE, S_SINCE, N_STATS };

/* Per-channel accumulators of one sample (ten sums and extremes, two step indices). */
#define ACCUMULATORS 12


/* n <= VD consecutive values from element k of a float32 (f32) or float64 array, as doubles
   (exact either way); lanes past n are NaN, i.e. not observed */
static inline vd load_channels(const void *x, int f32, int64_t k, int64_t n) {
    if (f32) {
        vfd a = (vfd){} + __builtin_nanf("");
        if (n == VD) /* a constant size: one load */
            memcpy(&a, (const float *)x + k, sizeof a);
        else
            memcpy(&a, (const float *)x + k, n * sizeof(float));
        return __builtin_convertvector(a, vd);
    }
    vd a = (vd){} + __builtin_nan("");
    if (n == VD)
        memcpy(&a, (const double *)x + k, sizeof a);
    else
        memcpy(&a, (const double *)x + k, n * sizeof(double));
    return a;
}

static void summarise_sample(int64_t T, int64_t F, const void *x, int f32, const double *times,
                             const uint8_t *valid, double *out, double *acc) {
    double *count = acc, *sum = acc + F, *mn = acc + 2 * F, *mx = acc + 3 * F, *first = acc + 4 * F;
    double *last = acc + 5 * F, *tsum = acc + 6 * F, *ss = acc + 7 * F, *num = acc + 8 * F, *den = acc + 9 * F;
    int64_t *t_first = (int64_t *)(acc + 10 * F), *t_last = (int64_t *)(acc + 11 * F);
    memset(acc, 0, sizeof(double) * ACCUMULATORS * F);
    int64_t end = T - 1;
    while (end > 0 && !valid[end]) end--;
    /* time since the sample's first step (0 on padding), scaled by its span */
#define SHIFTED(t) (valid[t] ? (times ? times[t] - times[0] : (double)(t)) : 0.0)
#define SCALED(t) (SHIFTED(t) / span)
    double span = 0.0;
    for (int64_t t = 0; t < T; t++) {
        const double a = __builtin_fabs(SHIFTED(t));
        if (a != a) span = __builtin_nan("");
        else if (a > span) span = a;
    }
    if (!(span == span && span > 0 && span < __builtin_inf())) span = 1.0;
    /* VD channels at a time, each lane one channel's accumulators in the order of the scalar
       definition (a lane adds its observed values one step after another): selects instead of
       skips, on explicit vectors (2,000 series of 16 channels, 20% missing, one thread: 0.67 ms at
       8 steps and 3.0 ms at 64, against 1.19 and 7.6 ms with a branch per value; plain loops of
       selects did not vectorise and took 2.6 ms at 8 steps) */
    for (int64_t f0 = 0; f0 < F; f0 += VD) {
        const int64_t nf = F - f0 < VD ? F - f0 : VD;
        const vd zero = {}, one = zero + 1.0;
        vd cnt = zero, sm = zero, lo = zero + __builtin_inf(), hi = zero - __builtin_inf(), fst = zero, lst = zero;
        vd ts = zero;
        vl tf = {}, tl = {};
        for (int64_t t = 0; t < T; t++) {
            if (!valid[t]) continue;
            const double st = SCALED(t);
            const vd v = load_channels(x, f32, t * F + f0, nf);
            const vl obs = (vl)(v == v), fresh = obs & (vl)(cnt == zero);
            fst = vd_select(fresh, v, fst);
            tf = (fresh & ((vl){} + t)) | (~fresh & tf);
            lo = vd_select(obs & (vl)(v < lo), v, lo);
            hi = vd_select(obs & (vl)(v > hi), v, hi);
            lst = vd_select(obs, v, lst);
            tl = (obs & ((vl){} + t)) | (~obs & tl);
            cnt = vd_select(obs, cnt + one, cnt);
            sm = vd_select(obs, sm + v, sm);
            ts = vd_select(obs, ts + st, ts);
        }
        double l_cnt[VD], l_sm[VD], l_lo[VD], l_hi[VD], l_fst[VD], l_lst[VD], l_ts[VD];
        int64_t l_tf[VD], l_tl[VD];
        memcpy(l_cnt, &cnt, sizeof l_cnt), memcpy(l_sm, &sm, sizeof l_sm), memcpy(l_lo, &lo, sizeof l_lo);
        memcpy(l_hi, &hi, sizeof l_hi), memcpy(l_fst, &fst, sizeof l_fst), memcpy(l_lst, &lst, sizeof l_lst);
        memcpy(l_ts, &ts, sizeof l_ts), memcpy(l_tf, &tf, sizeof l_tf), memcpy(l_tl, &tl, sizeof l_tl);
        for (int64_t i = 0; i < nf; i++) {
            const int64_t f = f0 + i;
            const double n_obs = l_cnt[i] > 1.0 ? l_cnt[i] : 1.0;
            count[f] = l_cnt[i], mn[f] = l_lo[i], mx[f] = l_hi[i], first[f] = l_fst[i], last[f] = l_lst[i];
            t_first[f] = l_tf[i], t_last[f] = l_tl[i];
            sum[f] = l_sm[i] / n_obs;  /* the mean */
            tsum[f] = l_ts[i] / n_obs; /* the mean scaled time */
        }
        vd mean, tmean, sq = zero, nu = zero, de = zero;
        memcpy(&mean, sum + f0, nf * sizeof(double));
        memcpy(&tmean, tsum + f0, nf * sizeof(double));
        for (int64_t t = 0; t < T; t++) {
            if (!valid[t]) continue;
            const double st = SCALED(t);
            const vd v = load_channels(x, f32, t * F + f0, nf);
            const vl obs = (vl)(v == v);
            const vd d = v - mean, c = st - tmean;
            sq = vd_select(obs, sq + d * d, sq);
            nu = vd_select(obs, nu + c * d, nu);
            de = vd_select(obs, de + c * c, de);
        }
        memcpy(ss + f0, &sq, nf * sizeof(double));
        memcpy(num + f0, &nu, nf * sizeof(double));
        memcpy(den + f0, &de, nf * sizeof(double));
    }
    const double nan = __builtin_nan("");
    for (int64_t f = 0; f < F; f++) {
        double *o = out + f * N_STATS;
        o[S_COUNT] = count[f];
        if (count[f] == 0) {
            for (int s = 0; s < N_STATS; s++)
                if (s != S_COUNT) o[s] = nan;
            continue;
        }
        o[S_MEAN] = sum[f];
        o[S_STD] = __builtin_sqrt(ss[f] / count[f]);
        o[S_MIN] = mn[f];
        o[S_MAX] = mx[f];
        o[S_FIRST] = first[f];
        o[S_LAST] = last[f];
        o[S_SINCE] = times ? times[end] - times[t_last[f]] : (double)(end - t_last[f]);
        /* fewer than 2 distinct observation times (times are non-decreasing): no slope */
        o[S_SLOPE] = SCALED(t_last[f]) > SCALED(t_first[f]) ? num[f] / den[f] / span : nan;
    }
#undef SCALED
#undef SHIFTED
}

int64_t summary_stats_scratch(int64_t F, int64_t n_threads) {
    return ACCUMULATORS * F * (n_threads < 1 ? 1 : n_threads);
}

void summary_stats(int64_t n, int64_t T, int64_t F, const void *values, int64_t f32, const double *times,
                   const uint8_t *valid, double *out, double *scratch, int64_t n_threads) {
    const size_t item = f32 ? sizeof(float) : sizeof(double);
    const int nt = team_size(n_threads, n);
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
#ifdef _OPENMP
        const int64_t tid = omp_get_thread_num();
#pragma omp for schedule(static)
#else
        const int64_t tid = 0;
#endif
        for (int64_t i = 0; i < n; i++)
            summarise_sample(T, F, (const char *)values + i * T * F * item, (int)f32, times ? times + i * T : 0,
                             valid + i * T, out + i * F * N_STATS, scratch + tid * ACCUMULATORS * F);
    }
}

/*
 * Piecewise-linear encoding of summary statistics on their quantile bins (quantile_encode in
 * mrmoe_sklearn/_data.py, which defines it and computes the same in numpy without this library):
 * raw (n, J) float64, edges (J, n_bins + 1); per column j its bins' fillings
 * clip((x - lo) / (hi - lo), 0, 1) (an empty bin, hi <= lo: 1 from hi on) and, where flag[j], a
 * last value 1 where x is not finite (its fillings 0), written to out (n, n_out) float32 from
 * offset[j] on; a column whose offset is negative is neither computed nor written (the encoding's
 * kept columns). The same float64 operations as numpy's, rounded once to float32: bit-identical.
 * Rows over threads.
 */
void quantile_encode(int64_t n, int64_t J, int64_t n_bins, const double *raw, const double *edges, float *out,
                     const int64_t *offset, const int64_t *flag, int64_t n_out, int64_t n_threads) {
    const int nt = team_size(n_threads, n);
    const int64_t width = n_bins + 1;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
#endif
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < J; j++) {
            if (offset[j] < 0) continue;
            const double x = raw[i * J + j], *e = edges + j * width;
            float *o = out + i * n_out + offset[j];
            if (!__builtin_isfinite(x)) {
                for (int64_t b = 0; b < n_bins; b++) o[b] = 0.0f;
                if (flag[j]) o[n_bins] = 1.0f;
                continue;
            }
            /* Every bin with x >= hi is full (numpy's clipped quotient is 1 there: x - lo >= hi - lo
               after rounding too; an empty bin, hi <= lo, by definition), every other is empty
               except one that holds x, lo <= x < hi, whose quotient is divided out as numpy's
               (x == lo too, for the sign of a zero). The edges do not decrease, so the full bins
               are the first k and the one holding x, if any, is bin k: compares and at most one
               division per value, no search (2,000 x 144 values of 8 bins, one thread: 9.5-10.3
               ms for a division and two branches per bin, 6.3-6.7 ms with a search for the
               partly filled bin, 2.1 ms without). */
            int64_t k = 0;
            for (int64_t b = 0; b < n_bins; b++) {
                const int full = x >= e[b + 1];
                o[b] = full ? 1.0f : 0.0f;
                k += full;
            }
            if (k < n_bins && e[k] <= x) {
                const double f = (x - e[k]) / (e[k + 1] - e[k]);
                o[k] = (float)(f < 0.0 ? 0.0 : (f > 1.0 ? 1.0 : f));
            }
            if (flag[j]) o[n_bins] = 0.0f;
        }
    }
}

/*
 * The network's work around the recurrence, fused (mrmoe_sklearn/nn/fused.py; the same
 * computations in PyTorch are attention.py, experts.py and gating.py, which define them): at a
 * few steps per series a batch's dozens of small tensor operations and their backward nodes
 * cost more than the arithmetic. Threads take ranges of whole blocks of samples (FOR_RANGES,
 * as the recurrence) and walk the time-major arrays step by step over their samples' rows.
 * A sample's arithmetic is that of one thread, and the weights' gradients are summed per
 * sample and then over the samples in order: the results are bit-identical for any thread
 * count.
 */

/* The lanes of a vector added in a fixed tree (the same order on every call). */
static inline float v_sum(vf a) {
    float l[VW];
    memcpy(l, &a, sizeof l);
    for (int w = VW / 2; w > 0; w /= 2)
        for (int i = 0; i < w; i++) l[i] += l[i + w];
    return l[0];
}

/* softmax of n scores in place: the largest subtracted first, exp, sums and quotients on
   vectors (the tail of n lanes padded: -inf for the largest, 0 for the sum) */
static void softmax_in_place(int64_t n, float *s) {
    const int64_t full = n / VW * VW, tail = n - full;
    vf top = (vf){} - __builtin_inff(), t = top, acc = {};
    for (int64_t j = 0; j < full; j += VW) {
        const vf c = *(const vf *)(s + j);
        top = v_select(c > top, c, top);
    }
    if (tail) {
        memcpy(&t, s + full, tail * sizeof(float));
        top = v_select(t > top, t, top);
    }
    float big = -__builtin_inff(), l[VW];
    memcpy(l, &top, sizeof l);
    for (int i = 0; i < VW; i++) big = l[i] > big ? l[i] : big;
    for (int64_t j = 0; j < full; j += VW) {
        const vf e = v_exp(*(const vf *)(s + j) - big);
        *(vf *)(s + j) = e;
        acc += e;
    }
    if (tail) {
        vf e = v_exp(t - big), kept = {};
        memcpy(&kept, &e, tail * sizeof(float));
        acc += kept;
        memcpy(s + full, &kept, tail * sizeof(float));
    }
    const float total = v_sum(acc);
    for (int64_t j = 0; j < n; j++) s[j] /= total;
}

/* The sums over samples of per-sample gradients (B rows of n floats), in sample order. */
static void sum_rows(int64_t B, int64_t n, const float *rows, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = 0.0f;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < n; i++) out[i] += rows[b * n + i];
}

/* The inputs of one sample of the front: its values x (T, F), mask m (T, F) bytes, elapsed
   times dt (T) and valid steps v (T) bytes, strided per sample in the batch-major arrays. */
typedef struct {
    const float *x, *dt;
    const uint8_t *m, *v;
    int64_t sx, sm, sdt, sv;
} front_inputs;

/* One sample's mask as floats, into mf (T, F). */
static void mask_floats(int64_t n, const uint8_t *restrict m, float *restrict mf) {
    for (int64_t i = 0; i < n; i++) mf[i] = m[i] ? 1.0f : 0.0f;
}

/* The front's forward for sample b (see front_forward); scratch: 3 T F floats. */
static void front_sample(int64_t T, int64_t B, int64_t F, int64_t b, const front_inputs *in, const float *restrict WaT,
                         const float *restrict ba, float *restrict p, float *restrict scratch, int64_t G,
                         const int64_t *rates, float **win, float **dtw, float **vw, float *restrict summ) {
    const int64_t F2 = 2 * F;
    const float *restrict x = in->x + b * in->sx, *restrict dt = in->dt + b * in->sdt;
    const uint8_t *restrict v = in->v + b * in->sv;
    float *restrict mf = scratch, *restrict xab = scratch + T * F;
    mask_floats(T * F, in->m + b * in->sm, mf);
    const float *restrict src = x; /* the weighted values */
    if (WaT) {
        /* the scores ba + x WaT[:F] + m WaT[F:], a softmax over the features, F p x */
        float *restrict pb = p ? p + b * T * F : scratch + 2 * T * F;
        for (int64_t t = 0; t < T; t++) memcpy(pb + t * F, ba, F * sizeof(float));
        rows_times(T, F, F, x, F, WaT, pb);
        rows_times(T, F, F, mf, F, WaT + F * F, pb);
        for (int64_t t = 0; t < T; t++) {
            softmax_in_place(F, pb + t * F);
            for (int64_t j = 0; j < F; j++) xab[t * F + j] = pb[t * F + j] * x[t * F + j] * (float)F;
        }
        src = xab;
    }
    for (int64_t g = 0; g < G; g++) {
        const int64_t r = rates[g], n = (T + r - 1) / r;
        for (int64_t w = 0; w < n; w++) {
            float *restrict o = win[g] + (w * B + b) * F2;
            float sdt = 0.0f, svalid = 0.0f;
            memset(o, 0, F2 * sizeof(float));
            for (int64_t t = w * r; t < T && t < w * r + r; t++) {
                for (int64_t j = 0; j < F; j++) o[j] += src[t * F + j];
                for (int64_t j = 0; j < F; j++) o[F + j] += mf[t * F + j];
                sdt += dt[t];
                svalid += v[t] ? 1.0f : 0.0f;
            }
            if (r > 1)
                for (int64_t j = 0; j < F; j++) {
                    o[j] /= o[F + j] > 1.0f ? o[F + j] : 1.0f;
                    o[F + j] /= (float)r;
                }
            dtw[g][w * B + b] = sdt;
            vw[g][w * B + b] = svalid > 0.0f ? 1.0f : 0.0f;
        }
    }
    if (!summ) return;
    /* per feature: mean, std (of the observed values), last observed value, observed fraction;
       the counts are kept in the fraction's place until the end */
    float *restrict mean = summ + b * 4 * F, *restrict sd = mean + F, *restrict last = sd + F, *restrict count = last + F;
    float steps = 0.0f;
    for (int64_t t = 0; t < T; t++) steps += v[t] ? 1.0f : 0.0f;
    memset(mean, 0, 4 * F * sizeof(float));
    memcpy(last, src, F * sizeof(float)); /* never observed: the first step's */
    for (int64_t t = 0; t < T; t++) {
        const float *restrict mt = mf + t * F, *restrict xt = src + t * F;
        for (int64_t j = 0; j < F; j++) {
            count[j] += mt[j];
            mean[j] += xt[j];
            last[j] = mt[j] > 0.0f ? xt[j] : last[j];
        }
    }
    for (int64_t j = 0; j < F; j++) mean[j] /= count[j] > 1.0f ? count[j] : 1.0f;
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < F; j++) {
            const float dev = (src[t * F + j] - mean[j]) * mf[t * F + j];
            sd[j] += dev * dev;
        }
    steps = steps > 1.0f ? steps : 1.0f;
    for (int64_t j = 0; j < F; j++) {
        sd[j] = __builtin_sqrtf(sd[j] / (count[j] > 1.0f ? count[j] : 1.0f) + 1e-6f);
        count[j] /= steps;
    }
}

/*
 * Front, forward, on a batch-major batch: x (B, T, F) float32 values (0 where missing), m
 * (B, T, F) observed mask and v (B, T) valid steps as bytes (0/1), dt (B, T) elapsed times;
 * each sample's (T, F) or (T) block contiguous, samples sx, sm, sdt, sv elements apart.
 * WaT (2F, F), ba (F): the feature attention's score layer (its weight transposed), or NULL for
 * none; the values are then weighted, F p x. Writes p (B, T, F), batch-major, the attention
 * weights (unless NULL: with attention, for a backward or an explanation); time-major for the
 * experts, for each of G rates:
 * win[g] (n_g, B, 2F) the windows' [mean of the observed weighted values, observed count /
 * rate], dtw[g] and vw[g] (n_g, B) their summed elapsed time and 1 where they hold a valid step
 * (n_g = ceil(T / rate)); summ (B, 4F), unless NULL, the gate's [mean, std, last, observed
 * fraction] of the weighted values per feature. scratch: 3 T F floats per thread.
 */
void front_forward(int64_t T, int64_t B, int64_t F, const float *x, int64_t sx, const uint8_t *m, int64_t sm,
                   const float *dt, int64_t sdt, const uint8_t *v, int64_t sv, const float *WaT, const float *ba,
                   float *p, int64_t G, const int64_t *rates, float **win, float **dtw, float **vw, float *summ,
                   float *scratch, int64_t n_threads) {
    const front_inputs in = {x, dt, m, v, sx, sm, sdt, sv};
    const int nt = team_size(n_threads, (B + BLOCK - 1) / BLOCK);
    FOR_RANGES(B, nt, for (int64_t b = b_lo; b < b_hi; b++) front_sample(T, B, F, b, &in, WaT, ba, p,
                                                                             scratch + 3 * tid * T * F, G, rates,
                                                                             win, dtw, vw, summ));
}

/* The front's backward for sample b (see front_backward); mf, dxa: T F floats of scratch; row:
   the 2F^2 + F gradients of the sample's block, which it adds to. */
static void front_back_sample(int64_t T, int64_t B, int64_t F, int64_t b, const front_inputs *in,
                              const float *restrict p, float *restrict mf,
                              float *restrict dxa, int64_t G, const int64_t *rates, float **gwin,
                              const float *restrict summ, const float *restrict gsumm, float *restrict row) {
    const int64_t F2 = 2 * F;
    const float *restrict x = in->x + b * in->sx, *restrict pb = p + b * T * F;
    mask_floats(T * F, in->m + b * in->sm, mf);
    memset(dxa, 0, T * F * sizeof(float));
    /* a window's mean spreads its gradient over its steps, divided by its observed count */
    float local[3 * F], *restrict scale = local;
    for (int64_t g = 0; g < G; g++) {
        if (!gwin[g]) continue;
        const int64_t r = rates[g], n = (T + r - 1) / r;
        for (int64_t w = 0; w < n; w++) {
            const float *restrict gw = gwin[g] + (w * B + b) * F2;
            if (r > 1) {
                memset(scale, 0, F * sizeof(float));
                for (int64_t t = w * r; t < T && t < w * r + r; t++)
                    for (int64_t j = 0; j < F; j++) scale[j] += mf[t * F + j];
                for (int64_t j = 0; j < F; j++) scale[j] = gw[j] / (scale[j] > 1.0f ? scale[j] : 1.0f);
            } else {
                memcpy(scale, gw, F * sizeof(float));
            }
            for (int64_t t = w * r; t < T && t < w * r + r; t++)
                for (int64_t j = 0; j < F; j++) dxa[t * F + j] += scale[j];
        }
    }
    if (gsumm) {
        const float *restrict s = summ + b * 4 * F, *restrict gs = gsumm + b * 4 * F;
        float *restrict count = local, *restrict last = local + F, *restrict dmean = local + 2 * F;
        for (int64_t j = 0; j < F; j++) count[j] = last[j] = 0.0f, dmean[j] = gs[j];
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < F; j++) {
                count[j] += mf[t * F + j];
                last[j] = mf[t * F + j] > 0.0f ? (float)t : last[j];
            }
        /* std = sqrt(var + eps), var = sum(((xa - mean) m)^2) / max(count, 1) */
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < F; j++) {
                const float mj = mf[t * F + j], denom = count[j] > 1.0f ? count[j] : 1.0f;
                const float dvar = gs[F + j] * 0.5f / s[F + j];
                const float xa = pb[t * F + j] * x[t * F + j] * (float)F; /* as the forward computed it */
                const float ddev = dvar * 2.0f * (xa - s[j]) * mj / denom;
                dxa[t * F + j] += ddev * mj;
                dmean[j] -= ddev * mj;
            }
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < F; j++) {
                dxa[t * F + j] += dmean[j] / (count[j] > 1.0f ? count[j] : 1.0f);
                if ((float)t == last[j]) dxa[t * F + j] += gs[2 * F + j];
            }
    }
    /* the attention: xa = F p x, p = softmax(s), s = ba + Wa [x, m]; the sample's sums in its row */
    float *restrict gW = row, *restrict gb = row + 2 * F * F;
    for (int64_t t = 0; t < T; t++) {
        const float *restrict xt = x + t * F, *restrict mt = mf + t * F, *restrict pt = pb + t * F;
        float *restrict dp = dxa + t * F, total = 0.0f; /* overwritten in place */
        for (int64_t j = 0; j < F; j++) dp[j] = dp[j] * (float)F * xt[j];
        for (int64_t j = 0; j < F; j++) total += pt[j] * dp[j];
        for (int64_t j = 0; j < F; j++) {
            const float ds = pt[j] * (dp[j] - total);
            if (ds == 0.0f) continue;
            float *restrict w = gW + j * F2;
            for (int64_t i = 0; i < F; i++) w[i] += ds * xt[i];
            for (int64_t i = 0; i < F; i++) w[F + i] += ds * mt[i];
            gb[j] += ds;
        }
    }
}

/*
 * Front, backward: from the gradients by win (G time-major tensors as written by the forward;
 * NULL for a rate whose windows need none) and by summ (or NULL), the gradients of the feature
 * attention: grads (2F^2 + F) = [gWa (F, 2F), gba (F)]. The inputs as for front_forward, p as it
 * wrote it. rows: ceil(B / BLOCK) (2F^2 + F) floats of scratch (each block of samples' gradients,
 * summed in block order: the same for any thread count); scratch: 2 T F floats per thread.
 */
void front_backward(int64_t T, int64_t B, int64_t F, const float *x, int64_t sx, const uint8_t *m, int64_t sm,
                    const float *p, int64_t G, const int64_t *rates, float **gwin,
                    const float *summ, const float *gsumm, float *rows, float *scratch, float *grads,
                    int64_t n_threads) {
    const front_inputs in = {x, NULL, m, NULL, sx, sm, 0, 0};
    const int64_t per_row = 2 * F * F + F;
    const int nt = team_size(n_threads, (B + BLOCK - 1) / BLOCK);
    FOR_RANGES(B, nt, {
        memset(rows + b_lo / BLOCK * per_row, 0, (b_hi - b_lo + BLOCK - 1) / BLOCK * per_row * sizeof(float));
        for (int64_t b = b_lo; b < b_hi; b++)
            front_back_sample(T, B, F, b, &in, p, scratch + 2 * tid * T * F, scratch + (2 * tid + 1) * T * F, G,
                              rates, gwin, summ, gsumm, rows + b / BLOCK * per_row);
    });
    sum_rows((B + BLOCK - 1) / BLOCK, per_row, rows, grads);
}

/* The back's forward for samples b_lo to b_hi - 1 (see back_forward); top, total: B floats each. */
static void back_range(int64_t K, int64_t B, int64_t H, int64_t D, const int64_t *n_steps, float **hs, float **vw,
                       const float *wt, const float *bt, const float *Pw, const float *Pb, const float *g, float **a,
                       float *ctx, float *z, float *out, float *top, float *total, int64_t b_lo, int64_t b_hi) {
    for (int64_t b = b_lo; b < b_hi; b++) memset(out + b * D, 0, D * sizeof(float));
    for (int64_t k = 0; k < K; k++) {
        const int64_t n = n_steps[k];
        const float *w = wt + k * H;
        float *ak = a[k];
        for (int64_t b = b_lo; b < b_hi; b++) top[b] = -__builtin_inff(), total[b] = 0.0f;
        for (int64_t t = 0; t < n; t++)
            for (int64_t b = b_lo; b < b_hi; b++) {
                if (vw[k][t * B + b] == 0.0f) continue;
                const float *h = hs[k] + (t * B + b) * H;
                float s = bt[k];
                for (int64_t i = 0; i < H; i++) s += h[i] * w[i];
                ak[t * B + b] = s;
                top[b] = s > top[b] ? s : top[b];
            }
        for (int64_t t = 0; t < n; t++)
            for (int64_t b = b_lo; b < b_hi; b++) {
                float *at = ak + t * B + b;
                *at = vw[k][t * B + b] == 0.0f ? 0.0f : __builtin_expf(*at - top[b]);
                total[b] += *at;
            }
        for (int64_t b = b_lo; b < b_hi; b++) memset(ctx + (k * B + b) * H, 0, H * sizeof(float));
        for (int64_t t = 0; t < n; t++)
            for (int64_t b = b_lo; b < b_hi; b++) {
                float *at = ak + t * B + b, *c = ctx + (k * B + b) * H;
                if (vw[k][t * B + b] == 0.0f) continue;
                *at /= total[b];
                const float *h = hs[k] + (t * B + b) * H;
                for (int64_t i = 0; i < H; i++) c[i] += *at * h[i];
            }
        for (int64_t b = b_lo; b < b_hi; b++) {
            float *zk = z + (k * B + b) * D, *o = out + b * D;
            memcpy(zk, Pb + k * D, D * sizeof(float));
            one_row_times(H, D, ctx + (k * B + b) * H, Pw + k * H * D, zk);
            const float gk = g[b * K + k];
            for (int64_t d = 0; d < D; d++) o[d] += gk * zk[d];
        }
    }
}

/*
 * Back, forward: the temporal attention over each expert's states and the gate's mixture of
 * the experts' projected contexts. K experts; hs[k] (n_k, B, H) states, vw[k] (n_k, B) 1.0 on
 * valid windows (each sample has one); wt (K, H), bt (K) the attention's scores; Pw (K, H, D),
 * Pb (K, D) the projections; g (B, K) the gate. Writes a[k] (n_k, B) the attention weights
 * (0 on invalid windows), ctx (K, B, H) the contexts, z (K, B, D) the projected contexts and
 * out (B, D) = sum_k g[:, k] z[k]. scratch: 2B floats.
 */
void back_forward(int64_t K, int64_t B, int64_t H, int64_t D, const int64_t *n_steps, float **hs, float **vw,
                  const float *wt, const float *bt, const float *Pw, const float *Pb, const float *g, float **a,
                  float *ctx, float *z, float *out, float *scratch, int64_t n_threads) {
    const int nt = team_size(n_threads, (B + BLOCK - 1) / BLOCK);
    FOR_RANGES(B, nt, back_range(K, B, H, D, n_steps, hs, vw, wt, bt, Pw, Pb, g, a, ctx, z, out, scratch,
                                 scratch + B, b_lo, b_hi));
}

/* The back's backward for samples b_lo to b_hi - 1 (see back_backward); dc: B (H + 1) floats.
   The weights' gradients are summed per block of BLOCK samples, in sample order, into the
   block's row. */
static void back_back_range(int64_t K, int64_t B, int64_t H, int64_t D, const int64_t *n_steps, float **hs,
                            float **vw, const float *wt, const float *PwT, const float *g, float **a,
                            const float *ctx, const float *z, const float *gout, float **ghs, float *gg, float *rows,
                            float *dc, int64_t b_lo, int64_t b_hi) {
    const int64_t per_k = H + 1 + H * D + D, per_row = K * per_k;
    float *mean = dc + B * H, dz[D];
    memset(rows + b_lo / BLOCK * per_row, 0, (b_hi - b_lo + BLOCK - 1) / BLOCK * per_row * sizeof(float));
    for (int64_t k = 0; k < K; k++) {
        const int64_t n = n_steps[k];
        const float *w = wt + k * H, *ak = a[k];
        for (int64_t b = b_lo; b < b_hi; b++) {
            const float *go = gout + b * D, *zk = z + (k * B + b) * D, *c = ctx + (k * B + b) * H;
            float *r_P = rows + b / BLOCK * per_row + k * per_k + H + 1, *r_b = r_P + H * D, *dcb = dc + b * H;
            const float gk = g[b * K + k];
            float dg = 0.0f;
            for (int64_t d = 0; d < D; d++) {
                dg += go[d] * zk[d];
                dz[d] = gk * go[d]; /* the projection bias' gradient */
                r_b[d] += dz[d];
            }
            gg[b * K + k] = dg;
            for (int64_t i = 0; i < H; i++) {
                for (int64_t d = 0; d < D; d++) r_P[i * D + d] += c[i] * dz[d];
                dcb[i] = 0.0f;
            }
            one_row_times(D, H, dz, PwT + k * D * H, dcb);
            mean[b] = 0.0f;
        }
        /* softmax over the valid windows: ds_t = a_t (da_t - sum_s a_s da_s), da_t = dc . h_t */
        for (int64_t t = 0; t < n; t++)
            for (int64_t b = b_lo; b < b_hi; b++) {
                if (vw[k][t * B + b] == 0.0f) continue;
                const float *h = hs[k] + (t * B + b) * H, *dcb = dc + b * H;
                float da = 0.0f;
                for (int64_t i = 0; i < H; i++) da += dcb[i] * h[i];
                mean[b] += ak[t * B + b] * da;
            }
        for (int64_t t = 0; t < n; t++)
            for (int64_t b = b_lo; b < b_hi; b++) {
                float *gh = ghs[k] + (t * B + b) * H;
                if (vw[k][t * B + b] == 0.0f) {
                    memset(gh, 0, H * sizeof(float));
                    continue;
                }
                const float *h = hs[k] + (t * B + b) * H, *dcb = dc + b * H, at = ak[t * B + b];
                float *r_w = rows + b / BLOCK * per_row + k * per_k, da = 0.0f;
                for (int64_t i = 0; i < H; i++) da += dcb[i] * h[i];
                const float ds = at * (da - mean[b]);
                for (int64_t i = 0; i < H; i++) {
                    gh[i] = at * dcb[i] + ds * w[i];
                    r_w[i] += ds * h[i];
                }
                r_w[H] += ds;
            }
    }
}

/*
 * Back, backward (PwT (K, D, H): the projections transposed): from gout (B, D), the gradients
 * ghs[k] (n_k, B, H), gg (B, K) and, per expert, grads (K, H + 1 + H D + D) = [gwt (H), gbt,
 * gPw (H, D), gPb (D)]. rows: ceil(B / BLOCK) such blocks of scratch (each block of samples'
 * gradients, summed in block order: the same for any thread count); dc: B (H + 1) floats of
 * scratch.
 */
void back_backward(int64_t K, int64_t B, int64_t H, int64_t D, const int64_t *n_steps, float **hs, float **vw,
                   const float *wt, const float *PwT, const float *g, float **a, const float *ctx, const float *z,
                   const float *gout, float **ghs, float *gg, float *rows, float *dc, float *grads,
                   int64_t n_threads) {
    const int nt = team_size(n_threads, (B + BLOCK - 1) / BLOCK);
    FOR_RANGES(B, nt, back_back_range(K, B, H, D, n_steps, hs, vw, wt, PwT, g, a, ctx, z, gout, ghs, gg, rows, dc,
                                      b_lo, b_hi));
    sum_rows((B + BLOCK - 1) / BLOCK, K * (H + 1 + H * D + D), rows, grads);
}

/*
 * The whole mixture in one call each way (mrmoe_sklearn/nn/fused.py: mixture; its definition
 * is the network's PyTorch computation, models.py): the front, each expert's input projection,
 * the experts' scans, the gate and the back, in the order MRMoENet runs them, with every
 * intermediate value in one workspace laid out by mixture_plan. The summaries' head, the
 * dropout, the output layer, the loss and the load-balancing loss stay in PyTorch.
 *
 * dims: T, B, F, K, H, U, D, G (distinct rates), Hg (the gate's hidden units), whether there
 * is a feature attention, whether there is a gate, whether a backward will follow (save),
 * and the thread count. rates (G): the distinct rates; rate_of (K): each expert's index in
 * rates. prm (N_PRM pointers, NULL for a part that is off): the parameters as the modules hold
 * them, contiguous.
 */
enum { D_T, D_B, D_F, D_K, D_H, D_U, D_D, D_G, D_HG, D_ATTN, D_GATE, D_SAVE, D_NT, N_DIMS };
enum { P_WA, P_BA, P_WI, P_BI, P_WH, P_HW, P_HB, P_W1, P_B1, P_W2, P_B2, P_WT, P_BT, P_PW, P_PB, N_PRM };
#define MAX_EXPERTS 64
#define MAX_GATE_UNITS 256
#define LECUN_OUTER 1.7159f

typedef struct {
    /* forward work */
    int64_t waT, wo, h0, summ, a1, gateT, ctx, z, scr;
    int64_t win[MAX_EXPERTS], dtw[MAX_EXPERTS], vw[MAX_EXPERTS];
    int64_t xin[MAX_EXPERTS], hs[MAX_EXPERTS], th[MAX_EXPERTS], act[MAX_EXPERTS], att[MAX_EXPERTS];
    int64_t n[MAX_EXPERTS];
    int64_t fwd_size;
    /* backward work */
    int64_t gg, gsumm, wiT, woT, whT, pwT, rows_f, rows_b, dc, grads_b, carry, gwo, bscr;
    int64_t ghs[MAX_EXPERTS], P[MAX_EXPERTS], gwin[MAX_EXPERTS];
    int64_t bwd_size;
    /* the parameters' gradients, flat, in prm order */
    int64_t grad[N_PRM + 1];
} mix_plan;

/* Offsets of n floats, each block starting on a 64-byte boundary. */
static int64_t take(int64_t *top, int64_t n) {
    const int64_t at = *top;
    *top += (n + 15) / 16 * 16;
    return at;
}

static int64_t max2(int64_t a, int64_t b) { return a > b ? a : b; }

static void mixture_plan(const int64_t *d, const int64_t *rates, const int64_t *rate_of, mix_plan *L) {
    const int64_t T = d[D_T], B = d[D_B], F = d[D_F], K = d[D_K], H = d[D_H], U = d[D_U], D = d[D_D];
    const int64_t G = d[D_G], Hg = d[D_HG], attn = d[D_ATTN], gate = d[D_GATE], save = d[D_SAVE], nt = d[D_NT];
    int64_t top = 0;
    memset(L, 0, sizeof *L);
    L->waT = take(&top, attn ? 2 * F * F : 0);
    L->wo = take(&top, K * U * 4 * H);
    L->h0 = take(&top, K * B * H);
    L->summ = take(&top, gate ? B * 4 * F : 0);
    L->a1 = take(&top, gate ? B * Hg : 0);
    L->gateT = take(&top, gate ? (4 * F + K) * Hg : 0);
    L->ctx = take(&top, K * B * H);
    L->z = take(&top, K * B * D);
    for (int64_t g = 0; g < G; g++) {
        const int64_t n = (T + rates[g] - 1) / rates[g];
        L->win[g] = take(&top, n * B * 2 * F);
        L->dtw[g] = take(&top, n * B);
        L->vw[g] = take(&top, n * B);
    }
    for (int64_t k = 0; k < K; k++) {
        const int64_t n = (T + rates[rate_of[k]] - 1) / rates[rate_of[k]];
        L->n[k] = n;
        L->xin[k] = take(&top, n * B * U);
        L->hs[k] = take(&top, n * B * H);
        L->th[k] = take(&top, save ? n * B * U : 0);
        L->act[k] = take(&top, save ? n * B * 3 * H : 0);
        L->att[k] = take(&top, n * B);
    }
    L->scr = take(&top, max2(max2(3 * nt * T * F, cfc_forward_scratch(B, H, U, nt)), 2 * B));
    L->fwd_size = top;
    top = 0;
    L->gg = take(&top, B * K);
    L->gsumm = take(&top, gate ? B * 4 * F : 0);
    L->wiT = take(&top, K * U * 2 * F);
    L->woT = take(&top, K * 4 * H * U);
    L->whT = take(&top, K * U * H);
    L->pwT = take(&top, K * D * H);
    L->rows_f = take(&top, attn ? (B + BLOCK - 1) / BLOCK * (2 * F * F + F) : 0);
    L->rows_b = take(&top, (B + BLOCK - 1) / BLOCK * K * (H + 1 + H * D + D));
    L->dc = take(&top, B * (H + 1));
    L->grads_b = take(&top, K * (H + 1 + H * D + D));
    L->carry = take(&top, K * B * H);
    L->gwo = take(&top, K * U * 4 * H);
    L->bscr = take(&top, max2(2 * nt * T * F, cfc_backward_experts_scratch(K, B, H, U, nt)));
    for (int64_t g = 0; g < G; g++) L->gwin[g] = take(&top, attn ? (T + rates[g] - 1) / rates[g] * B * 2 * F : 0);
    for (int64_t k = 0; k < K; k++) {
        L->ghs[k] = take(&top, L->n[k] * B * H);
        L->P[k] = take(&top, L->n[k] * B * U);
    }
    L->bwd_size = top;
    const int64_t sizes[N_PRM] = {attn ? 2 * F * F : 0, attn ? F : 0, K * 2 * F * U, K * U, K * H * U,
                                  K * U * 4 * H, K * 4 * H, gate ? Hg * 4 * F : 0, gate ? Hg : 0,
                                  gate ? K * Hg : 0, gate ? K : 0, K * H, K, K * H * D, K * D};
    L->grad[0] = 0;
    for (int j = 0; j < N_PRM; j++) L->grad[j + 1] = L->grad[j] + sizes[j];
}

/*
 * What a caller needs of the plan: info[0..2] = floats of the forward's workspace, of the
 * backward's, of the parameters' gradients (flat, in prm order: info[3 + j] is where
 * parameter j starts, info[3 + N_PRM] where they end) and, from info[4 + N_PRM], each expert's
 * attention weights (n_k, B) in the forward's workspace. Returns 0, or -1 where K or G exceeds
 * MAX_EXPERTS.
 */
int64_t mixture_layout(const int64_t *dims, const int64_t *rates, const int64_t *rate_of, int64_t *info) {
    if (dims[D_K] > MAX_EXPERTS || dims[D_G] > MAX_EXPERTS) return -1;
    mix_plan L;
    mixture_plan(dims, rates, rate_of, &L);
    info[0] = L.fwd_size;
    info[1] = L.bwd_size;
    info[2] = L.grad[N_PRM];
    for (int j = 0; j <= N_PRM; j++) info[3 + j] = L.grad[j];
    for (int64_t k = 0; k < dims[D_K]; k++) info[4 + N_PRM + k] = L.att[k];
    return 0;
}

/* out (R, O) = bias + a (R, C) @ W (C, O), rows shared by threads (each row is one thread's). */
static void affine_rows(int64_t R, int64_t C, int64_t O, const float *a, const float *W, const float *bias,
                        float *out, int nt) {
    FOR_RANGES(R, nt, {
        for (int64_t r = b_lo; r < b_hi; r++) memcpy(out + r * O, bias, O * sizeof(float));
        rows_times(b_hi - b_lo, C, O, a + b_lo * C, C, W, out + b_lo * O);
    });
}

/* gW (C, O) = sum_r a[r]^T P[r] and gb (O) = sum_r P[r] over R rows (a (R, C), P (R, O)), each
   sum in row order, blocks of BLOCK rows at a time (the same for any thread count); threads take
   blocks of 8 of the C inputs, and the bias. */
static void weight_grad(int64_t R, int64_t C, int64_t O, const float *restrict a, const float *restrict P,
                        float *restrict gW, float *restrict gb, int nt) {
    const int64_t n_blocks = (C + 7) / 8;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (int64_t cb = 0; cb <= n_blocks; cb++) {
        if (cb == n_blocks) {
            memset(gb, 0, O * sizeof(float));
            for (int64_t r = 0; r < R; r++)
                for (int64_t o = 0; o < O; o++) gb[o] += P[r * O + o];
            continue;
        }
        const int64_t c0 = 8 * cb, nc = C - c0 < 8 ? C - c0 : 8;
        float aT[8 * BLOCK];
        memset(gW + c0 * O, 0, nc * O * sizeof(float));
        for (int64_t r0 = 0; r0 < R; r0 += BLOCK)
            add_outer(R - r0 < BLOCK ? R - r0 : BLOCK, nc, O, a + r0 * C + c0, C, P + r0 * O, aT, gW + c0 * O);
    }
}

/* dst (n_out, n_in) = src (n_in, n_out) transposed, for each of K matrices. */
static void transpose_each(int64_t K, int64_t n_in, int64_t n_out, const float *src, float *dst) {
    for (int64_t k = 0; k < K; k++)
        for (int64_t i = 0; i < n_in; i++)
            for (int64_t o = 0; o < n_out; o++) dst[(k * n_out + o) * n_in + i] = src[(k * n_in + i) * n_out + o];
}

/*
 * Forward. x, m, dt, v: the batch as front_forward takes it. work: the plan's fwd_size floats.
 * Writes out (B, D), the gate's mixture of the experts' projected contexts, gates (B, K) (1 / K
 * each without a gate), p (B, T, F) the feature attention's weights unless NULL, and in work
 * what the backward needs (the attention weights of each expert's windows among it).
 */
void mixture_forward(const int64_t *dims, const int64_t *rates, const int64_t *rate_of, const float *x, int64_t sx,
                     const uint8_t *m, int64_t sm, const float *dt, int64_t sdt, const uint8_t *v, int64_t sv,
                     const float **prm, float *work, float *out, float *gates, float *p) {
    const int64_t T = dims[D_T], B = dims[D_B], F = dims[D_F], K = dims[D_K], H = dims[D_H], U = dims[D_U];
    const int64_t D = dims[D_D], G = dims[D_G], Hg = dims[D_HG], F4 = 4 * F;
    const int nt = (int)dims[D_NT];
    mix_plan L;
    mixture_plan(dims, rates, rate_of, &L);
    float *win[MAX_EXPERTS], *dtw[MAX_EXPERTS], *vw[MAX_EXPERTS];
    for (int64_t g = 0; g < G; g++) win[g] = work + L.win[g], dtw[g] = work + L.dtw[g], vw[g] = work + L.vw[g];
    float *waT = NULL, *summ = dims[D_GATE] ? work + L.summ : NULL;
    if (dims[D_ATTN]) {
        waT = work + L.waT;
        transpose_each(1, F, 2 * F, prm[P_WA], waT);
    }
    front_forward(T, B, F, x, sx, m, sm, dt, sdt, v, sv, waT, dims[D_ATTN] ? prm[P_BA] : NULL, p, G, rates, win,
                  dtw, vw, summ, work + L.scr, nt);
    /* each expert's input half of its backbone, for all its windows */
    const float *xs[MAX_EXPERTS], *ds[MAX_EXPERTS], *vs[MAX_EXPERTS];
    float *hs[MAX_EXPERTS], *th[MAX_EXPERTS], *act[MAX_EXPERTS], *att[MAX_EXPERTS];
    int64_t xs_t[MAX_EXPERTS], xs_b[MAX_EXPERTS];
    for (int64_t k = 0; k < K; k++) {
        const int64_t g = rate_of[k];
        float *xin = work + L.xin[k];
        affine_rows(L.n[k] * B, 2 * F, U, win[g], prm[P_WI] + k * 2 * F * U, prm[P_BI] + k * U, xin, nt);
        xs[k] = xin, xs_t[k] = B * U, xs_b[k] = U, ds[k] = dtw[g], vs[k] = vw[g];
        hs[k] = work + L.hs[k], att[k] = work + L.att[k];
        th[k] = work + L.th[k], act[k] = work + L.act[k];
    }
    float *wo = work + L.wo, *h0 = work + L.h0;
    for (int64_t i = 0; i < K * U * 4 * H; i++) wo[i] = LECUN_OUTER * prm[P_HW][i];
    memset(h0, 0, K * B * H * sizeof(float));
    cfc_forward_experts(K, L.n, B, H, U, xs, xs_t, xs_b, ds, vs, h0, prm[P_WH], wo, prm[P_HB], hs,
                        dims[D_SAVE] ? th : NULL, dims[D_SAVE] ? act : NULL, work + L.scr, nt);
    /* the gate: softmax(W2 tanh(W1 summ + b1) + b2), its weights transposed for row products */
    if (dims[D_GATE]) {
        float *a1 = work + L.a1, *W1T = work + L.gateT, *W2T = W1T + F4 * Hg;
        transpose_each(1, Hg, F4, prm[P_W1], W1T);
        transpose_each(1, K, Hg, prm[P_W2], W2T);
        FOR_RANGES(B, nt, {
            for (int64_t b = b_lo; b < b_hi; b++) memcpy(a1 + b * Hg, prm[P_B1], Hg * sizeof(float));
            rows_times(b_hi - b_lo, F4, Hg, summ + b_lo * F4, F4, W1T, a1 + b_lo * Hg);
            tanh_of((b_hi - b_lo) * Hg, a1 + b_lo * Hg, 1.0f, a1 + b_lo * Hg);
            for (int64_t b = b_lo; b < b_hi; b++) memcpy(gates + b * K, prm[P_B2], K * sizeof(float));
            rows_times(b_hi - b_lo, Hg, K, a1 + b_lo * Hg, Hg, W2T, gates + b_lo * K);
            for (int64_t b = b_lo; b < b_hi; b++) softmax_in_place(K, gates + b * K);
        });
    } else {
        for (int64_t i = 0; i < B * K; i++) gates[i] = 1.0f / (float)K;
    }
    back_forward(K, B, H, D, L.n, hs, (float **)vs, prm[P_WT], prm[P_BT], prm[P_PW], prm[P_PB], gates, att,
                 work + L.ctx, work + L.z, out, work + L.scr, nt);
}

/*
 * Backward, after mixture_forward with save: from gout (B, D) and ggates (B, K) (the loss'
 * gradients by out and by gates; ggates may be NULL), every parameter's gradient into grads
 * (flat, in prm order, at the offsets mixture_layout gives). x, m, p, work as the forward had
 * them; bwork: the plan's bwd_size floats.
 */
void mixture_backward(const int64_t *dims, const int64_t *rates, const int64_t *rate_of, const float *x, int64_t sx,
                      const uint8_t *m, int64_t sm, const float **prm, const float *p, float *work,
                      const float *gates, const float *gout, const float *ggates, float *bwork, float *grads) {
    const int64_t T = dims[D_T], B = dims[D_B], F = dims[D_F], K = dims[D_K], H = dims[D_H], U = dims[D_U];
    const int64_t D = dims[D_D], G = dims[D_G], Hg = dims[D_HG], F4 = 4 * F, H4 = 4 * H;
    const int nt = (int)dims[D_NT];
    mix_plan L;
    mixture_plan(dims, rates, rate_of, &L);
    float *hs[MAX_EXPERTS], *vs[MAX_EXPERTS], *att[MAX_EXPERTS], *ghs[MAX_EXPERTS], *P[MAX_EXPERTS];
    const float *chs[MAX_EXPERTS], *cds[MAX_EXPERTS], *cvs[MAX_EXPERTS], *cth[MAX_EXPERTS], *cact[MAX_EXPERTS],
        *cghs[MAX_EXPERTS];
    for (int64_t k = 0; k < K; k++) {
        const int64_t g = rate_of[k];
        hs[k] = work + L.hs[k], vs[k] = work + L.vw[g], att[k] = work + L.att[k];
        ghs[k] = bwork + L.ghs[k], P[k] = bwork + L.P[k];
        chs[k] = hs[k], cds[k] = work + L.dtw[g], cvs[k] = vs[k], cghs[k] = ghs[k];
        cth[k] = work + L.th[k], cact[k] = work + L.act[k];
    }
    /* the back: the experts' states, the gate, the temporal attention and projections */
    float *pwT = bwork + L.pwT, *gg = bwork + L.gg, *gb_ = bwork + L.grads_b;
    transpose_each(K, H, D, prm[P_PW], pwT);
    back_backward(K, B, H, D, L.n, hs, vs, prm[P_WT], pwT, gates, att, work + L.ctx, work + L.z, gout, ghs, gg,
                  bwork + L.rows_b, bwork + L.dc, gb_, nt);
    {
        const int64_t per_k = H + 1 + H * D + D;
        float *gwt = grads + L.grad[P_WT], *gbt = grads + L.grad[P_BT];
        float *gPw = grads + L.grad[P_PW], *gPb = grads + L.grad[P_PB];
        for (int64_t k = 0; k < K; k++) {
            const float *r = gb_ + k * per_k;
            memcpy(gwt + k * H, r, H * sizeof(float));
            gbt[k] = r[H];
            memcpy(gPw + k * H * D, r + H + 1, H * D * sizeof(float));
            memcpy(gPb + k * D, r + H + 1 + H * D, D * sizeof(float));
        }
    }
    /* the gate, one sample after another (its sums in sample order) */
    float *gsumm = NULL;
    if (dims[D_GATE]) {
        const float *a1 = work + L.a1, *summ = work + L.summ, *W1 = prm[P_W1], *W2 = prm[P_W2];
        float *gW1 = grads + L.grad[P_W1], *gb1 = grads + L.grad[P_B1];
        float *gW2 = grads + L.grad[P_W2], *gb2 = grads + L.grad[P_B2];
        gsumm = bwork + L.gsumm;
        memset(gW1, 0, (L.grad[P_B2 + 1] - L.grad[P_W1]) * sizeof(float));
        float dl[MAX_EXPERTS], dpre[MAX_GATE_UNITS];
        for (int64_t b = 0; b < B; b++) {
            const float *gk = gates + b * K, *ab = a1 + b * Hg, *sb = summ + b * F4;
            float total = 0.0f;
            for (int64_t k = 0; k < K; k++) {
                dl[k] = gg[b * K + k] + (ggates ? ggates[b * K + k] : 0.0f);
                total += gk[k] * dl[k];
            }
            for (int64_t k = 0; k < K; k++) {
                dl[k] = gk[k] * (dl[k] - total);
                for (int64_t j = 0; j < Hg; j++) gW2[k * Hg + j] += dl[k] * ab[j];
                gb2[k] += dl[k];
            }
            for (int64_t j = 0; j < Hg; j++) {
                float da = 0.0f;
                for (int64_t k = 0; k < K; k++) da += W2[k * Hg + j] * dl[k];
                dpre[j] = da * (1.0f - ab[j] * ab[j]);
                for (int64_t i = 0; i < F4; i++) gW1[j * F4 + i] += dpre[j] * sb[i];
                gb1[j] += dpre[j];
            }
            float *gs = gsumm + b * F4;
            memset(gs, 0, F4 * sizeof(float));
            for (int64_t j = 0; j < Hg; j++)
                for (int64_t i = 0; i < F4; i++) gs[i] += W1[j * F4 + i] * dpre[j];
        }
    }
    /* the experts' scans */
    float *woT = bwork + L.woT, *whT = bwork + L.whT, *carry = bwork + L.carry, *gwo = bwork + L.gwo;
    transpose_each(K, U, H4, work + L.wo, woT);
    transpose_each(K, H, U, prm[P_WH], whT);
    memset(carry, 0, K * B * H * sizeof(float));
    cfc_backward_experts(K, L.n, B, H, U, cghs, cds, cvs, cth, cact, chs, work + L.h0, woT, whT, P, carry,
                         grads + L.grad[P_WH], gwo, grads + L.grad[P_HB], bwork + L.bscr, nt);
    for (int64_t i = 0; i < K * U * H4; i++) grads[L.grad[P_HW] + i] = gwo[i] * LECUN_OUTER;
    /* the input projections: their weights, and the windows' gradients for the attention */
    float *gwin[MAX_EXPERTS], *wiT = bwork + L.wiT;
    for (int64_t g = 0; g < G; g++) {
        gwin[g] = dims[D_ATTN] ? bwork + L.gwin[g] : NULL;
        if (gwin[g]) memset(gwin[g], 0, (T + rates[g] - 1) / rates[g] * B * 2 * F * sizeof(float));
    }
    if (dims[D_ATTN]) transpose_each(K, 2 * F, U, prm[P_WI], wiT);
    for (int64_t k = 0; k < K; k++) {
        const int64_t g = rate_of[k], R = L.n[k] * B;
        weight_grad(R, 2 * F, U, work + L.win[g], P[k], grads + L.grad[P_WI] + k * 2 * F * U,
                    grads + L.grad[P_BI] + k * U, nt);
        if (gwin[g]) {
            const float *Pk = P[k], *Wk = wiT + k * U * 2 * F;
            float *gw = gwin[g];
            FOR_RANGES(R, nt, rows_times(b_hi - b_lo, U, 2 * F, Pk + b_lo * U, U, Wk, gw + b_lo * 2 * F));
        }
    }
    /* the front: the feature attention's gradients */
    if (dims[D_ATTN])
        front_backward(T, B, F, x, sx, m, sm, p, G, rates, gwin, gsumm ? work + L.summ : NULL, gsumm,
                       bwork + L.rows_f, bwork + L.bscr, grads + L.grad[P_WA], nt);
}
