/*
 * espresso — boolean covers as lists of cubes: many small set objects made
 * and dropped by a recursive algorithm.
 *
 * Mirrors the shape of espresso (the two-level logic minimiser in
 * mimalloc-bench and the Hoard/Zorn suites): cubes are small bit vectors
 * (2 bits per input variable), covers are growing arrays of cubes, and the
 * unate recursive paradigm builds cofactor covers at every level of a
 * Shannon expansion and throws them away on the way back up.  This program
 * is written here: for a series of random functions F of 20..40 variables
 * it computes the complement of F by recursive Shannon expansion (with
 * De Morgan at the leaves and a merge of identical cubes on the way up),
 * then checks the result.
 *
 *   rsbshape-espresso [-s SCALE] [--smoke]
 *
 * Self-check: F and its complement C must not intersect (every pair of a
 * cube of F and a cube of C is void), and for 2048 random minterms exactly
 * one of F and C covers the minterm.
 */
#include "shape.h"

static struct shape sh;
static int nvars, words;

/* A cube: 2 bits per variable, 01 = x', 10 = x, 11 = don't care, 00 = void. */
typedef uint64_t cube;

typedef struct {
    int n, cap;
    cube **c;
} cover;

static cube *cube_new(void)
{
    return shape_malloc(&sh, sizeof(cube) * (size_t)words);
}

static cube *cube_dup(const cube *a)
{
    cube *c = cube_new();
    memcpy(c, a, sizeof(cube) * (size_t)words);
    return c;
}

static cube *cube_universe(void)
{
    cube *c = cube_new();
    for (int w = 0; w < words; w++) {
        int vars = nvars - 32 * w < 32 ? nvars - 32 * w : 32;
        c[w] = vars == 32 ? ~0ull : (1ull << (2 * vars)) - 1;
    }
    return c;
}

static unsigned lit(const cube *c, int v)
{
    return (unsigned)(c[v / 32] >> (2 * (v % 32))) & 3u;
}

static void set_lit(cube *c, int v, unsigned l)
{
    c[v / 32] = (c[v / 32] & ~(3ull << (2 * (v % 32)))) | ((uint64_t)l << (2 * (v % 32)));
}

static int is_universe(const cube *c)
{
    for (int v = 0; v < nvars; v++)
        if (lit(c, v) != 3)
            return 0;
    return 1;
}

static int is_void(const cube *c)
{
    for (int v = 0; v < nvars; v++)
        if (lit(c, v) == 0)
            return 1;
    return 0;
}

static cover *cover_new(void)
{
    cover *f = shape_malloc(&sh, sizeof *f);
    f->n = 0;
    f->cap = 0;
    f->c = NULL;
    return f;
}

static void cover_add(cover *f, cube *c)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        cube **nc = realloc(f->c, sizeof *nc * (size_t)f->cap);
        if (nc == NULL)
            shape_fail(&sh, "realloc of a cover failed");
        f->c = nc;
    }
    f->c[f->n++] = c;
}

static void cover_free(cover *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->c[i]);
    free(f->c);
    free(f);
}

/* The cubes of f that allow x = val, with x made a don't care. */
static cover *cofactor(const cover *f, int x, unsigned val)
{
    cover *r = cover_new();
    unsigned want = val ? 2u : 1u;
    for (int i = 0; i < f->n; i++) {
        if (lit(f->c[i], x) & want) {
            cube *c = cube_dup(f->c[i]);
            set_lit(c, x, 3);
            cover_add(r, c);
        }
    }
    return r;
}

static int cube_order(const void *a, const void *b)
{
    const cube *x = *(cube *const *)a, *y = *(cube *const *)b;
    for (int w = 0; w < words; w++)
        if (x[w] != y[w])
            return x[w] < y[w] ? -1 : 1;
    return 0;
}

static cover *complement(const cover *f)
{
    cover *r = cover_new();
    if (f->n == 0) {
        cover_add(r, cube_universe());
        return r;
    }
    for (int i = 0; i < f->n; i++)
        if (is_universe(f->c[i]))
            return r;
    if (f->n == 1) { /* De Morgan: one cube per literal, complemented */
        for (int v = 0; v < nvars; v++) {
            unsigned l = lit(f->c[0], v);
            if (l != 3) {
                cube *c = cube_universe();
                set_lit(c, v, l ^ 3u);
                cover_add(r, c);
            }
        }
        return r;
    }
    /* Split on the most binate variable (most cubes with both polarities). */
    int best = -1, best_score = -1;
    for (int v = 0; v < nvars; v++) {
        int zeros = 0, ones = 0;
        for (int i = 0; i < f->n; i++) {
            unsigned l = lit(f->c[i], v);
            zeros += l == 1;
            ones += l == 2;
        }
        int score = (zeros < ones ? zeros : ones) * 1024 + zeros + ones;
        if (zeros + ones > 0 && score > best_score) {
            best = v;
            best_score = score;
        }
    }
    cover *f1 = cofactor(f, best, 1), *f0 = cofactor(f, best, 0);
    cover *c1 = complement(f1), *c0 = complement(f0);
    cover_free(f1);
    cover_free(f0);
    /* r = x c1 + x' c0, where a cube found in both becomes one cube with x
     * a don't care: sort both covers and walk them side by side. */
    qsort(c1->c, (size_t)c1->n, sizeof(cube *), cube_order);
    qsort(c0->c, (size_t)c0->n, sizeof(cube *), cube_order);
    int i = 0, j = 0;
    while (i < c1->n || j < c0->n) {
        int d = i == c1->n ? 1 : j == c0->n ? -1 : cube_order(&c1->c[i], &c0->c[j]);
        if (d == 0) {
            cover_add(r, c1->c[i++]);
            free(c0->c[j++]);
        } else if (d < 0) {
            set_lit(c1->c[i], best, 2);
            cover_add(r, c1->c[i++]);
        } else {
            set_lit(c0->c[j], best, 1);
            cover_add(r, c0->c[j++]);
        }
    }
    c1->n = 0; /* the cubes moved to r */
    c0->n = 0;
    cover_free(c1);
    cover_free(c0);
    return r;
}

static int covers(const cover *f, const cube *m)
{
    for (int i = 0; i < f->n; i++) {
        int in = 1;
        for (int w = 0; w < words && in; w++)
            in = (f->c[i][w] & m[w]) == m[w];
        if (in)
            return 1;
    }
    return 0;
}

static void check(const cover *f, const cover *c, rng_t *rng)
{
    for (int i = 0; i < f->n; i++) {
        for (int j = 0; j < c->n; j++) {
            cube *x = cube_new();
            for (int w = 0; w < words; w++)
                x[w] = f->c[i][w] & c->c[j][w];
            if (!is_void(x))
                shape_fail(&sh, "F and its complement intersect");
            free(x);
        }
    }
    cube *m = cube_new();
    memset(m, 0, sizeof(cube) * (size_t)words);
    for (int t = 0; t < 2048; t++) {
        for (int v = 0; v < nvars; v++)
            set_lit(m, v, (rng_next(rng) >> 40) & 1 ? 2u : 1u);
        if (covers(f, m) == covers(c, m))
            shape_fail(&sh, "a minterm is in %s", covers(f, m) ? "both" : "neither");
    }
    free(m);
}

int main(int argc, char **argv)
{
    shape_init(&sh, "espresso", argc, argv, 1, "", NULL);
    long functions = shape_count(&sh, 200, 6);
    rng_t rng = rng_make(3);
    long cubes_in = 0, cubes_out = 0;
    for (long k = 0; k < functions; k++) {
        nvars = 20 + (int)rng_below(&rng, 21);
        words = (nvars + 31) / 32;
        int ncubes = 16 + (int)rng_below(&rng, 9);
        cover *f = cover_new();
        for (int i = 0; i < ncubes; i++) {
            cube *c = cube_universe();
            for (int v = 0; v < nvars; v++) {
                uint32_t r = rng_below(&rng, 100);
                if (r < 20)
                    set_lit(c, v, 1);
                else if (r < 40)
                    set_lit(c, v, 2);
            }
            cover_add(f, c);
        }
        cover *c = complement(f);
        check(f, c, &rng);
        cubes_in += f->n;
        cubes_out += c->n;
        cover_free(c);
        cover_free(f);
    }
    shape_ok(&sh, "functions=%ld cubes_in=%ld cubes_out=%ld", functions, cubes_in, cubes_out);
    return 0;
}
