/*
 * One CfC expert over its whole sequence, forward and backward, in float32.
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
 * compiles this file on first use; PyTorch computes the weights' gradients in
 * bulk from what these functions write.
 */
#include <stdint.h>
#include <string.h>

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
typedef float vf __attribute__((vector_size(4 * VW), aligned(4)));
typedef int32_t vi __attribute__((vector_size(4 * VW), aligned(4)));

static inline vf v_select(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }

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

/* out[b, :] += a[b, :] @ W for a (B, n_in) with row stride lda, W (n_in, n_out), out (B, n_out). */
static void rows_times(int64_t B, int64_t n_in, int64_t n_out, const float *restrict a, int64_t lda,
                       const float *restrict W, float *restrict out) {
#define ROWS(NV) \
    case NV: \
        for (int64_t b = 0; b < B; b++) row_times(n_in, n_out, a + b * lda, W, out + b * n_out, NV); \
        return;
#define ROW_PAIRS(NV) \
    case NV: \
        for (b = 0; b + 1 < B; b += 2) two_rows_times(n_in, n_out, a + b * lda, lda, W, out + b * n_out, NV); \
        if (b < B) row_times(n_in, n_out, a + b * lda, W, out + b * n_out, NV); \
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

/* Samples processed together in a step (their intermediate values: about 10 KB). */
#define BLOCK 16

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

/*
 * Forward over n steps of a batch of B.
 * x (n, B, U) with strides (xs_t, xs_b, 1); dt, v (n, B), v NULL when every step is valid;
 * h0 (B, H); Wh (H, U); Wo (U, 4H); bo (4H); hs (n, B, H) out.
 * th (n, B, U) and act (n, B, 3H) = [f1, f2, s] are written when not NULL (for the
 * backward); scratch (B * (U + 7H) floats) holds the heads' pre-activations and, without
 * th and act, one step's.
 */
void cfc_forward(int64_t n, int64_t B, int64_t H, int64_t U, const float *x, int64_t xs_t, int64_t xs_b,
                 const float *dt, const float *v, const float *h0, const float *Wh, const float *Wo,
                 const float *bo, float *hs, float *th, float *act, float *scratch) {
    const int64_t H4 = 4 * H, H3 = 3 * H;
    const int64_t rows = B < BLOCK ? B : BLOCK; /* scratch holds at most B samples */
    float *z = scratch;
    float *th_step = scratch + rows * H4;
    float *act_step = th_step + rows * U;
    for (int64_t t = 0; t < n; t++) {
        const float *h = t ? hs + (t - 1) * B * H : h0;
        const float *xt = x + t * xs_t, *dtt = dt + t * B, *vt = v ? v + t * B : NULL;
        /* a block of samples at a time: its intermediate values stay in the first-level cache */
        for (int64_t b0 = 0; b0 < B; b0 += BLOCK) {
            const int64_t nb = B - b0 < BLOCK ? B - b0 : BLOCK;
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

/*
 * Backward over the same n steps, last to first.
 * g (n, B, H): the loss' gradient by each output state; th, act as written by the forward;
 * WoT (4H, U), WhT (U, H): the weights transposed. Writes G (n, B, 4H), the gradient by the
 * heads' pre-activations, and P (n, B, U), the gradient by the backbone's input half x.
 * carry (B, H): on entry the gradient by the last state from later steps (zeros usually),
 * on return the gradient by h0.
 */
void cfc_backward(int64_t n, int64_t B, int64_t H, int64_t U, const float *g, const float *dt, const float *v,
                  const float *th, const float *act, const float *WoT, const float *WhT, float *G, float *P,
                  float *carry) {
    const int64_t H4 = 4 * H, H3 = 3 * H;
    for (int64_t t = n - 1; t >= 0; t--) {
        const float *gt = g + t * B * H, *at = act + t * B * H3, *tht = th + t * B * U;
        const float *dtt = dt + t * B;
        float *Gt = G + t * B * H4, *Pt = P + t * B * U;
        for (int64_t b0 = 0; b0 < B; b0 += BLOCK) {
            const int64_t nb = B - b0 < BLOCK ? B - b0 : BLOCK;
            float *Gb = Gt + b0 * H4, *Pb = Pt + b0 * U, *cb = carry + b0 * H;
            const float *thb = tht + b0 * U;
            for (int64_t b = b0; b < b0 + nb; b++)
                heads_grad(H, gt + b * H, at + b * H3, v ? v[t * B + b] : 1.0f, dtt[b], Gt + b * H4, carry + b * H);
            memset(Pb, 0, nb * U * sizeof(float));
            rows_times(nb, H4, U, Gb, H4, WoT, Pb);
            for (int64_t i = 0; i < nb * U; i++) Pb[i] *= LECUN_INNER * (1.0f - thb[i] * thb[i]);
            rows_times(nb, U, H, Pb, U, WhT, cb);
        }
    }
}
