/* CPU kernels for the coordinate-addressable generators.
 *
 * Every output element is a pure function of (key, index): SplitMix64 for the hash source and
 * Gray-code Sobol' (optionally Owen-scrambled) for the quasirandom sources. Transforms run in float64
 * and are cast at the end so that this file, the torch fallback in hash.py/sobol.py and the numpy
 * reference in the tests agree bit-for-bit. Compile with -ffp-contract=off: a fused multiply-add would
 * round differently from torch's separate mul/add.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define GAMMA 0x9E3779B97F4A7C15ULL

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Wichura's AS241 (PPND16): the inverse normal CDF, about 1e-16 relative error. Polynomials are
 * evaluated in the same Horner order as ndtri.py. */
static double ndtri_tail(double q, double p) {
    double r = sqrt(-log(q < 0.0 ? p : 1.0 - p)), v;
    if (r <= 5.0) {
        r = r - 1.6;
        v = (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r
              + 2.41780725177450611770e-1) * r + 1.27045825245236838258e0) * r
              + 3.64784832476320460504e0) * r + 5.76949722146069140550e0) * r
              + 4.63033784615654529590e0) * r + 1.42343711074968357734e0)
          / (((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r
              + 1.51986665636164571966e-2) * r + 1.48103976427480074590e-1) * r
              + 6.89767334985100004550e-1) * r + 1.67638483018380384940e0) * r
              + 2.05319162663775882187e0) * r + 1.0);
    } else {
        r = r - 5.0;
        v = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
              + 1.24266094738807843860e-3) * r + 2.65321895265761230930e-2) * r
              + 2.96560571828504891230e-1) * r + 1.78482653991729133580e0) * r
              + 5.46378491116411436990e0) * r + 6.65790464350110377720e0)
          / (((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r
              + 1.84631831751005468180e-5) * r + 7.86869131145613259100e-4) * r
              + 1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r
              + 5.99832206555887937690e-1) * r + 1.0);
    }
    return q < 0.0 ? -v : v;
}

/* kind 0: uniform, 1: normal, 2: normal truncated to the CDF interval [plo, plo + pw]. */
typedef struct { int kind; double loc, scale, plo, pw; } transform_t;

#define BLOCK 512
#define CLONES __attribute__((target_clones("avx2", "default")))

static inline double central(double q) {
    double r = 0.180625 - q * q;
    return q * (((((((2.5090809287301226727e3 * r + 3.3430575583588128105e4) * r
              + 6.7265770927008700853e4) * r + 4.5921953931549871457e4) * r
              + 1.3731693765509461125e4) * r + 1.9715909503065514427e3) * r
              + 1.3314166789178437745e2) * r + 3.3871328727963666080e0)
           / (((((((5.2264952788528545610e3 * r + 2.8729085735721942674e4) * r
              + 3.9307895800092710610e4) * r + 2.1213794301586595867e4) * r
              + 5.3941960214247511077e3) * r + 6.8718700749205790830e2) * r
              + 4.2313330701600911252e1) * r + 1.0);
}

/* u[0..n) in, transformed values out. The central branch runs branch-free over the whole block so the
 * compiler vectorises it; the ~15 % of tail values are then fixed up one by one. */
CLONES static void transform_block(double *u, int n, const transform_t *t) {
    double p[BLOCK];
    if (t->kind == 0) {
        for (int i = 0; i < n; i++) u[i] = u[i] * t->scale + t->loc;
        return;
    }
    if (t->kind == 2)
        for (int i = 0; i < n; i++) p[i] = t->pw * u[i] + t->plo;
    else
        for (int i = 0; i < n; i++) p[i] = u[i];
    for (int i = 0; i < n; i++) u[i] = central(p[i] - 0.5);
    /* Collect the tail lanes without branching (they are random: a branch would mispredict often). */
    int tail[BLOCK], k = 0;
    for (int i = 0; i < n; i++) {
        tail[k] = i;
        k += fabs(p[i] - 0.5) > 0.425;
    }
    for (int j = 0; j < k; j++) u[tail[j]] = ndtri_tail(p[tail[j]] - 0.5, p[tail[j]]);
    for (int i = 0; i < n; i++) u[i] = u[i] * t->scale + t->loc;
}

static inline void store(void *out, int f64, Py_ssize_t at, const double *v, int n) {
    if (f64) memcpy((double *)out + at, v, (size_t)n * sizeof(double));
    else {
        float *o = (float *)out + at;
        for (int i = 0; i < n; i++) o[i] = (float)v[i];
    }
}

/* (m + 0.5) · 2^-52 for the top 52 bits m of h, exactly, without a slow int→double conversion. */
CLONES static void hash_block(double *u, int n, uint64_t z) {
    for (int i = 0; i < n; i++) {
        uint64_t bits = (mix64(z + (uint64_t)i * GAMMA) >> 12) | 0x3FF0000000000000ULL;
        double d;
        memcpy(&d, &bits, sizeof d);
        u[i] = (d - 1.0) + 0x1.0p-53;
    }
}

static inline uint32_t rev32(uint32_t x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
    x = ((x >> 8) & 0x00FF00FFu) | ((x & 0x00FF00FFu) << 8);
    return (x >> 16) | (x << 16);
}

/* Laine-Karras permutation on bit-reversed input = hash-based Owen scrambling (Burley 2020). */
static inline uint32_t owen32(uint32_t x, uint32_t seed) {
    x = rev32(x);
    x += seed;
    x ^= x * 0x6c50b47cu;
    x ^= x * 0xb82f1e52u;
    x ^= x * 0xc7afe638u;
    x ^= x * 0x8d22f6e6u;
    return rev32(x);
}

static int parse_transform(PyObject *args, unsigned long long *addr, Py_ssize_t *n, int *f64,
                           transform_t *t, PyObject **rest) {
    return PyArg_ParseTuple(args, "KniiddddO", addr, n, f64, &t->kind, &t->loc, &t->scale, &t->plo,
                            &t->pw, rest);
}

/* hash_fill(addr, n, f64, kind, loc, scale, plo, pw, (key, offset)) */
static PyObject *hash_fill(PyObject *self, PyObject *args) {
    unsigned long long addr, key, offset;
    Py_ssize_t n;
    int f64;
    transform_t t;
    PyObject *rest;
    if (!parse_transform(args, &addr, &n, &f64, &t, &rest)) return NULL;
    if (!PyArg_ParseTuple(rest, "KK", &key, &offset)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    double v[BLOCK];
    for (Py_ssize_t at = 0; at < n; at += BLOCK) {
        int m = n - at < BLOCK ? (int)(n - at) : BLOCK;
        hash_block(v, m, key + (offset + (uint64_t)at + 1) * GAMMA);
        transform_block(v, m, &t);
        store((void *)(uintptr_t)addr, f64, at, v, m);
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* x = XOR of sv[b] over the set bits b of g, by four byte-indexed tables instead of a bit loop. */
static void byte_tables(const uint32_t *sv, int bits, uint32_t tab[4][256]) {
    for (int k = 0; k < 4; k++) {
        tab[k][0] = 0;
        for (int b = 0; b < 8; b++) {
            uint32_t d = 8 * k + b < bits ? sv[8 * k + b] : 0;
            for (int j = 0; j < (1 << b); j++) tab[k][(1 << b) + j] = tab[k][j] ^ d;
        }
    }
}

/* sobol_fill(addr, n, f64, kind, loc, scale, plo, pw, (sv_bytes, offset, bits, scrambled,
 *            index_bits, index_seed, value_seed)).
 * Unscrambled: u = x · 2^-bits (scipy's values). Scrambled: the index is Owen-permuted within
 * index_bits bits, the 32-bit value is Owen-scrambled, u = (x + 0.5) · 2^-32. */
static PyObject *sobol_fill(PyObject *self, PyObject *args) {
    unsigned long long addr, offset;
    Py_ssize_t n, svlen;
    int f64, bits, scrambled, index_bits;
    unsigned int iseed, vseed;
    const char *svb;
    transform_t t;
    PyObject *rest;
    if (!parse_transform(args, &addr, &n, &f64, &t, &rest)) return NULL;
    if (!PyArg_ParseTuple(rest, "y#KiiiII", &svb, &svlen, &offset, &bits, &scrambled, &index_bits, &iseed,
                          &vseed))
        return NULL;
    if (bits > 32 || svlen != (Py_ssize_t)(bits * sizeof(uint32_t))) {
        PyErr_SetString(PyExc_ValueError, "direction-number buffer does not match bits");
        return NULL;
    }
    uint32_t sv[32];
    memcpy(sv, svb, (size_t)svlen);
    const uint32_t imask = index_bits >= 32 ? 0xFFFFFFFFu : ((1u << index_bits) - 1u);
    const double inv = ldexp(1.0, -bits);
    Py_BEGIN_ALLOW_THREADS
    uint32_t tab[4][256];
    byte_tables(sv, bits, tab);
    double v[BLOCK];
    for (Py_ssize_t at = 0; at < n; at += BLOCK) {
        int m = n - at < BLOCK ? (int)(n - at) : BLOCK;
        for (int i = 0; i < m; i++) {
            uint32_t idx = (uint32_t)(offset + (uint64_t)(at + i));
            if (scrambled) idx = owen32(idx, iseed) & imask;
            uint32_t g = idx ^ (idx >> 1);
            uint32_t x = tab[0][g & 255] ^ tab[1][(g >> 8) & 255] ^ tab[2][(g >> 16) & 255] ^ tab[3][g >> 24];
            v[i] = scrambled ? ((double)owen32(x << (32 - bits), vseed) + 0.5) * 0x1.0p-32 : (double)x * inv;
        }
        transform_block(v, m, &t);
        store((void *)(uintptr_t)addr, f64, at, v, m);
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* mask_mul(w_addr, m_addr, n, f64): w[i] = w[i] * m[i] for a 0/1 byte mask, the float multiply torch's
 * mul_ by a float copy of the mask does (so bit for bit the same, signed zeros included), reading one byte
 * of mask per weight instead of four. */
static PyObject *mask_mul(PyObject *self, PyObject *args) {
    unsigned long long waddr, maddr;
    Py_ssize_t n;
    int f64;
    if (!PyArg_ParseTuple(args, "KKni", &waddr, &maddr, &n, &f64)) return NULL;
    const uint8_t *m = (const uint8_t *)(uintptr_t)maddr;
    Py_BEGIN_ALLOW_THREADS
    if (f64) {
        double *w = (double *)(uintptr_t)waddr;
        for (Py_ssize_t i = 0; i < n; i++) w[i] = w[i] * (double)m[i];
    } else {
        float *w = (float *)(uintptr_t)waddr;
        for (Py_ssize_t i = 0; i < n; i++) w[i] = w[i] * (float)m[i];
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"mask_mul", mask_mul, METH_VARARGS, "Multiply a contiguous float buffer by a 0/1 byte mask in place."},
    {"hash_fill", hash_fill, METH_VARARGS, "Fill a contiguous float buffer from the counter hash."},
    {"sobol_fill", sobol_fill, METH_VARARGS, "Fill a contiguous float buffer from one Sobol' dimension."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fill", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fill(void) { return PyModule_Create(&module); }
