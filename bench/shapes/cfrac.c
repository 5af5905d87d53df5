/*
 * cfrac — bignum arithmetic with many small, short-lived numbers.
 *
 * Mirrors the shape of cfrac (the continued-fraction factoring program in
 * mimalloc-bench and the Hoard/Zorn suites): arbitrary-precision integers
 * that every operation allocates afresh and the caller frees soon after, of
 * sizes from a few bytes to a few hundred.  This program is written here: it
 * expands sqrt(N) as a continued fraction for a series of ~128-bit N, which
 * is the core loop of the continued-fraction factoring method, and, like
 * cfrac, trial-divides each Q_k by a small factor base (the primes below
 * 200) to find the ones that factor over it.
 *
 *   rsbshape-cfrac [-s SCALE] [--smoke]
 *
 * Self-check, at every step k: the convergent p_k/q_k satisfies
 * p_k^2 - N q_k^2 = (-1)^(k+1) Q_(k+1), the division that gives Q_(k+1) is
 * exact, and the factors found in Q_(k+1) multiply back to it.
 */
#include "shape.h"

static struct shape sh;

/* ---- naturals: little-endian 32-bit limbs, no leading zero limb ---------- */

typedef struct big {
    uint32_t n;
    uint32_t d[];
} big;

static big *bnew(uint32_t n)
{
    big *b = shape_malloc(&sh, sizeof(big) + (size_t)n * sizeof(uint32_t));
    b->n = n;
    return b;
}

static big *bnorm(big *b)
{
    while (b->n > 0 && b->d[b->n - 1] == 0)
        b->n--;
    return b;
}

static big *bfrom(uint64_t v)
{
    big *b = bnew(2);
    b->d[0] = (uint32_t)v;
    b->d[1] = (uint32_t)(v >> 32);
    return bnorm(b);
}

static big *bcopy_(const big *a)
{
    big *b = bnew(a->n);
    memcpy(b->d, a->d, (size_t)a->n * sizeof(uint32_t));
    return b;
}

static int bcmp_(const big *a, const big *b)
{
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    for (uint32_t i = a->n; i-- > 0;)
        if (a->d[i] != b->d[i])
            return a->d[i] < b->d[i] ? -1 : 1;
    return 0;
}

static big *badd(const big *a, const big *b)
{
    if (a->n < b->n) {
        const big *t = a;
        a = b;
        b = t;
    }
    big *r = bnew(a->n + 1);
    uint64_t c = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        c += (uint64_t)a->d[i] + (i < b->n ? b->d[i] : 0);
        r->d[i] = (uint32_t)c;
        c >>= 32;
    }
    r->d[a->n] = (uint32_t)c;
    return bnorm(r);
}

/* a - b, a >= b */
static big *bsub(const big *a, const big *b)
{
    if (bcmp_(a, b) < 0)
        shape_fail(&sh, "subtraction would be negative");
    big *r = bnew(a->n);
    int64_t borrow = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        int64_t t = (int64_t)a->d[i] - (i < b->n ? b->d[i] : 0) - borrow;
        borrow = t < 0;
        r->d[i] = (uint32_t)t;
    }
    return bnorm(r);
}

static big *bmul(const big *a, const big *b)
{
    if (a->n == 0 || b->n == 0)
        return bnew(0);
    big *r = bnew(a->n + b->n);
    memset(r->d, 0, (size_t)r->n * sizeof(uint32_t));
    for (uint32_t i = 0; i < a->n; i++) {
        uint64_t c = 0;
        for (uint32_t j = 0; j < b->n; j++) {
            c += (uint64_t)a->d[i] * b->d[j] + r->d[i + j];
            r->d[i + j] = (uint32_t)c;
            c >>= 32;
        }
        r->d[i + b->n] = (uint32_t)c;
    }
    return bnorm(r);
}

static big *bshr1(const big *a)
{
    big *r = bnew(a->n);
    for (uint32_t i = 0; i < a->n; i++)
        r->d[i] = (a->d[i] >> 1) | (i + 1 < a->n ? a->d[i + 1] << 31 : 0);
    return bnorm(r);
}

/* q = u / v, r = u % v (Knuth's algorithm D; v != 0).  Either output may be
 * NULL if not wanted. */
static void bdivmod(const big *u, const big *v, big **qo, big **ro)
{
    big *q, *r;
    if (v->n == 0)
        shape_fail(&sh, "division by zero");
    if (bcmp_(u, v) < 0) {
        q = bnew(0);
        r = bcopy_(u);
    } else if (v->n == 1) {
        q = bnew(u->n);
        uint64_t rem = 0;
        for (uint32_t i = u->n; i-- > 0;) {
            uint64_t cur = rem << 32 | u->d[i];
            q->d[i] = (uint32_t)(cur / v->d[0]);
            rem = cur % v->d[0];
        }
        bnorm(q);
        r = bfrom(rem);
    } else {
        uint32_t n = v->n, m = u->n;
        int s = __builtin_clz(v->d[n - 1]);
        /* Normalised copies: the divisor's top bit set, the dividend one limb longer. */
        uint32_t *vn = shape_malloc(&sh, sizeof(uint32_t) * n);
        uint32_t *un = shape_malloc(&sh, sizeof(uint32_t) * (m + 1));
        for (uint32_t i = n - 1; i > 0; i--)
            vn[i] = (v->d[i] << s) | (s ? v->d[i - 1] >> (32 - s) : 0);
        vn[0] = v->d[0] << s;
        un[m] = s ? u->d[m - 1] >> (32 - s) : 0;
        for (uint32_t i = m - 1; i > 0; i--)
            un[i] = (u->d[i] << s) | (s ? u->d[i - 1] >> (32 - s) : 0);
        un[0] = u->d[0] << s;
        q = bnew(m - n + 1);
        const uint64_t B = (uint64_t)1 << 32;
        for (int64_t j = (int64_t)(m - n); j >= 0; j--) {
            uint64_t num = (uint64_t)un[j + n] << 32 | un[j + n - 1];
            uint64_t qhat = num / vn[n - 1];
            uint64_t rhat = num % vn[n - 1];
            while (qhat >= B || qhat * vn[n - 2] > (rhat << 32 | un[j + n - 2])) {
                qhat--;
                rhat += vn[n - 1];
                if (rhat >= B)
                    break;
            }
            int64_t k = 0, t;
            for (uint32_t i = 0; i < n; i++) {
                uint64_t p = qhat * vn[i];
                t = (int64_t)un[i + j] - k - (int64_t)(p & 0xffffffffu);
                un[i + j] = (uint32_t)t;
                k = (int64_t)(p >> 32) - (t >> 32);
            }
            t = (int64_t)un[j + n] - k;
            un[j + n] = (uint32_t)t;
            if (t < 0) { /* qhat was one too large: add the divisor back */
                qhat--;
                uint64_t c = 0;
                for (uint32_t i = 0; i < n; i++) {
                    c += (uint64_t)un[i + j] + vn[i];
                    un[i + j] = (uint32_t)c;
                    c >>= 32;
                }
                un[j + n] += (uint32_t)c;
            }
            q->d[j] = (uint32_t)qhat;
        }
        bnorm(q);
        r = bnew(n);
        for (uint32_t i = 0; i < n; i++)
            r->d[i] = (un[i] >> s) | (s ? un[i + 1] << (32 - s) : 0);
        bnorm(r);
        free(un);
        free(vn);
    }
    if (qo)
        *qo = q;
    else
        free(q);
    if (ro)
        *ro = r;
    else
        free(r);
}

static uint32_t bbits(const big *a)
{
    return a->n ? 32 * a->n - (uint32_t)__builtin_clz(a->d[a->n - 1]) : 0;
}

/* floor(sqrt(a)) by Newton's iteration from a power of two above it. */
static big *bsqrt(const big *a)
{
    uint32_t e = (bbits(a) + 1) / 2;
    big *x = bnew(e / 32 + 1);
    memset(x->d, 0, (size_t)x->n * sizeof(uint32_t));
    x->d[e / 32] = 1u << (e % 32);
    bnorm(x);
    for (;;) {
        big *t, *s, *y;
        bdivmod(a, x, &t, NULL);
        s = badd(x, t);
        y = bshr1(s);
        free(t);
        free(s);
        if (bcmp_(y, x) >= 0) {
            free(y);
            return x;
        }
        free(x);
        x = y;
    }
}

/* ---- the continued fraction of sqrt(N) ------------------------------------ */

static const uint32_t primes[] = {2,   3,   5,   7,   11,  13,  17,  19,  23,  29,  31,  37,
                                  41,  43,  47,  53,  59,  61,  67,  71,  73,  79,  83,  89,
                                  97,  101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151,
                                  157, 163, 167, 173, 179, 181, 191, 193, 197, 199};
#define NPRIMES (sizeof primes / sizeof primes[0])

/* Trial-divide Q by the factor base; check that the factors multiply back
 * to Q.  Returns the number of prime factors found (with multiplicity). */
static int factor_check(const big *Q)
{
    big *rest = bcopy_(Q);
    big *prod = bfrom(1);
    int found = 0;
    for (size_t i = 0; i < NPRIMES; i++) {
        big *p = bfrom(primes[i]);
        for (;;) {
            big *q, *r;
            bdivmod(rest, p, &q, &r);
            int divides = r->n == 0;
            free(r);
            if (!divides) {
                free(q);
                break;
            }
            free(rest);
            rest = q;
            found++;
            big *np = bmul(prod, p);
            free(prod);
            prod = np;
        }
        free(p);
    }
    big *back = bmul(prod, rest);
    if (bcmp_(back, Q) != 0)
        shape_fail(&sh, "the factors of Q do not multiply back to Q");
    free(back);
    free(prod);
    free(rest);
    return found;
}

/* Expand sqrt(N) for `steps` steps; returns the number of small prime
 * factors found in the Q_k. */
static long expand(const big *N, long steps)
{
    big *a0 = bsqrt(N);
    big *P = bnew(0), *Q = bfrom(1), *a = bcopy_(a0);
    big *p1 = bfrom(1), *p = bcopy_(a0); /* p_(k-1), p_k */
    big *q1 = bnew(0), *q = bfrom(1);    /* q_(k-1), q_k */
    long factors = 0;
    for (long k = 0; k < steps; k++) {
        /* P' = a Q - P;  Q' = (N - P'^2) / Q;  a' = (a0 + P') / Q' */
        big *aQ = bmul(a, Q);
        big *Pn = bsub(aQ, P);
        big *P2 = bmul(Pn, Pn);
        big *d = bsub(N, P2);
        big *Qn, *rem;
        bdivmod(d, Q, &Qn, &rem);
        if (rem->n != 0)
            shape_fail(&sh, "step %ld: (N - P^2) / Q is not exact", k);
        if (Qn->n == 0)
            shape_fail(&sh, "step %ld: Q became 0 (N is a square)", k);
        big *s = badd(a0, Pn);
        big *an;
        bdivmod(s, Qn, &an, NULL);
        /* p_k^2 - N q_k^2 = (-1)^(k+1) Q_(k+1) */
        big *pp = bmul(p, p), *qq = bmul(q, q), *nqq = bmul(N, qq);
        big *diff = (k & 1) ? bsub(pp, nqq) : bsub(nqq, pp);
        if (bcmp_(diff, Qn) != 0)
            shape_fail(&sh, "step %ld: p^2 - N q^2 != +-Q", k);
        factors += factor_check(Qn);
        /* p_(k+1) = a' p_k + p_(k-1), and the same for q. */
        big *ap = bmul(an, p), *aq = bmul(an, q);
        big *pn = badd(ap, p1), *qn = badd(aq, q1);
        free(aQ), free(P2), free(d), free(rem), free(s), free(pp), free(qq), free(nqq);
        free(diff), free(ap), free(aq), free(p1), free(q1), free(P), free(Q), free(a);
        p1 = p, p = pn, q1 = q, q = qn;
        P = Pn, Q = Qn, a = an;
    }
    free(a0), free(P), free(Q), free(a), free(p1), free(p), free(q1), free(q);
    return factors;
}

int main(int argc, char **argv)
{
    shape_init(&sh, "cfrac", argc, argv, 1, "", NULL);
    long numbers = shape_count(&sh, 300, 3);
    long steps = sh.smoke ? 100 : 500;
    rng_t rng = rng_make(77);
    long factors = 0, done = 0;
    while (done < numbers) {
        /* N = a random 126..128-bit odd number that is not a square. */
        big *N = bnew(4);
        for (int i = 0; i < 4; i++)
            N->d[i] = (uint32_t)rng_next(&rng);
        N->d[3] |= 1u << 29;
        N->d[0] |= 1;
        bnorm(N);
        /* r = floor(sqrt(N)): r^2 <= N < (r + 1)^2 */
        big *r = bsqrt(N), *r2 = bmul(r, r), *one = bfrom(1), *r1 = badd(r, one);
        big *r12 = bmul(r1, r1);
        if (bcmp_(r2, N) > 0 || bcmp_(r12, N) <= 0)
            shape_fail(&sh, "integer square root is wrong");
        int square = bcmp_(r2, N) == 0;
        free(r), free(r2), free(one), free(r1), free(r12);
        if (!square) {
            factors += expand(N, steps);
            done++;
        }
        free(N);
    }
    shape_ok(&sh, "numbers=%ld steps=%ld factors=%ld", numbers, steps, factors);
    return 0;
}
