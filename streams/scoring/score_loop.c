#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

/* The scorer's per-event loop (streams/scoring/community.py, CommunityScorer._score), in C:
 * built by `make native` beside the mypyc modules (setup.py, streams/native.py), used when
 * it is there. The same statements in the same order over the same columns, read and written
 * through their buffers instead of as boxed items; everything else (tier changes, demotions,
 * the ambassadors' reconcile, top-set updates, community rows, role changes) is the scorer's
 * own Python, called back at the same points with the same arguments. The Python loop is the
 * reference: tests/unit/test_score_loop.py holds the two to identical state and outputs.
 *
 * loop(scorer, events, actors, targets, known, changes, rows, columns, heaps, tops, amb_changed,
 *      active, tier_counts, numbers, codes, heappush) -> the clock after the events, or None
 *      when it did not run (an event time that is not a float: the Python loop takes it).
 *   columns: (creation, curation, received, first_seen, last_active, last_comment, join_ts,
 *             events, tier, role, excluded, join_source, ranks)
 *   heaps: (creators, curators)
 *   numbers: (rate, landmark, clock, f, active_window, creator_threshold, creator_floor,
 *             curator_threshold, curator_floor, tie (or None), k_high, rest_cap, minute_seconds,
 *             like_weight, share_weight, comment_weight)
 *   codes: (JOIN, COMMENT, LURKER, CURATOR, CREATOR) */

enum { C_CREATION, C_CURATION, C_RECEIVED, C_FIRST, C_LAST_ACTIVE, C_LAST_COMMENT, C_JOIN_TS, C_EVENTS, C_TIER,
       C_ROLE, C_EXCLUDED, C_JOIN_SOURCE, C_RANKS, C_N };

static PyObject *s_eligible, *s_total, *s_positive, *s_tie, *s_k_range, *s_row, *s_resize_tops, *s_set_role,
    *s_activate, *s_change_tier, *s_demote, *s_reconcile, *s_bit, *s_top, *s_k, *s_rest, *s_compact_rest, *s_grew,
    *s_top_total, *one;

/* CPython's float floor division (floatobject.c, float_floor_div via _float_div_mod), for a, b finite, b != 0 */
static double floor_div(double vx, double wx)
{
    double mod = fmod(vx, wx);
    double div = (vx - mod) / wx;
    if (mod) {
        if ((wx < 0) != (mod < 0)) div -= 1.0;
    }
    double floordiv;
    if (div) {
        floordiv = floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = copysign(0.0, vx / wx);
    }
    return floordiv;
}

/* k_high = self._k_range[1] */
static int read_k_high(PyObject *self, long *k_high)
{
    PyObject *kr = PyObject_GetAttr(self, s_k_range);
    if (kr == NULL) return -1;
    PyObject *hi = PySequence_GetItem(kr, 1);
    Py_DECREF(kr);
    if (hi == NULL) return -1;
    *k_high = PyLong_AsLong(hi);
    Py_DECREF(hi);
    return (*k_high == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* heap[0][0] as a double, or inf for an empty heap (`heap[0][0] if heap else inf`); -1 on error */
static int heap_low(PyObject *heap, double *low, int must)
{
    if (PyList_GET_SIZE(heap) == 0) {
        if (must) {
            PyErr_SetString(PyExc_IndexError, "list index out of range");
            return -1;
        }
        *low = INFINITY;
        return 0;
    }
    PyObject *top = PyList_GET_ITEM(heap, 0);
    PyObject *key = PySequence_GetItem(top, 0);
    if (key == NULL) return -1;
    *low = PyFloat_AsDouble(key);
    Py_DECREF(key);
    return (*low == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* self.name(*args), a new reference or NULL; steals `args` (NULL: Py_BuildValue failed) */
static PyObject *call(PyObject *self, PyObject *name, PyObject *args)
{
    if (args == NULL) return NULL;
    PyObject *method = PyObject_GetAttr(self, name);
    PyObject *r = method ? PyObject_CallObject(method, args) : NULL;
    Py_XDECREF(method);
    Py_DECREF(args);
    return r;
}

/* the same, the result dropped: 0, or -1 on error */
static int call_none(PyObject *self, PyObject *name, PyObject *args)
{
    PyObject *r = call(self, name, args);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

/* math.exp: an overflow from a finite argument raises OverflowError instead of giving inf */
static int py_exp(double x, double *out)
{
    double r = exp(x);
    if (isinf(r) && isfinite(x)) {
        PyErr_SetString(PyExc_OverflowError, "math range error");
        return -1;
    }
    *out = r;
    return 0;
}

static double num(PyObject *numbers, Py_ssize_t i) { return PyFloat_AsDouble(PyTuple_GET_ITEM(numbers, i)); }

/* What the loop keeps in C between two calls into Python, written back before each call and
 * read again after it (and written back at the end): the scorer's counters and each top set's
 * running sum (added to in the same order as the Python loop adds, so the same doubles), and
 * each top set's k, heap and rest (read fresh after a call: it may resize or replace them). */
#define MAX_TOPS 8
typedef struct {
    PyObject *obj;
    long bit;
    Py_ssize_t k;
    PyObject *top, *rest; /* new references */
    double total;
} Top;

typedef struct {
    PyObject *self;
    long eligible, positive;
    double total;
    Py_ssize_t ntops;
    Top tops[MAX_TOPS];
} Ctx;

/* o.name = x; steals `x` (NULL: it could not be made) */
static int set_attr(PyObject *o, PyObject *name, PyObject *x)
{
    if (x == NULL) return -1;
    int r = PyObject_SetAttr(o, name, x);
    Py_DECREF(x);
    return r;
}

static int set_long(PyObject *o, PyObject *name, long v) { return set_attr(o, name, PyLong_FromLong(v)); }

static int set_double(PyObject *o, PyObject *name, double v) { return set_attr(o, name, PyFloat_FromDouble(v)); }

static int get_long(PyObject *o, PyObject *name, long *v)
{
    PyObject *x = PyObject_GetAttr(o, name);
    if (x == NULL) return -1;
    *v = PyLong_AsLong(x);
    Py_DECREF(x);
    return (*v == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int get_double(PyObject *o, PyObject *name, double *v)
{
    PyObject *x = PyObject_GetAttr(o, name);
    if (x == NULL) return -1;
    *v = PyFloat_AsDouble(x);
    Py_DECREF(x);
    return (*v == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

/* a top set's own method (grew, compact_rest): it changes its sum, heap and rest, nothing else
 * the loop holds (its k only changes in resize and rebuild, which the scorer calls) */
static int top_out(Ctx *c, Py_ssize_t i) { return set_double(c->tops[i].obj, s_top_total, c->tops[i].total); }

static int top_in(Ctx *c, Py_ssize_t i)
{
    Top *t = &c->tops[i];
    if (get_double(t->obj, s_top_total, &t->total) < 0) return -1;
    PyObject *top = PyObject_GetAttr(t->obj, s_top);
    if (top == NULL) return -1;
    Py_XSETREF(t->top, top);
    PyObject *rest = PyObject_GetAttr(t->obj, s_rest);
    if (rest == NULL) return -1;
    Py_XSETREF(t->rest, rest);
    if (!PyList_Check(t->top) || !PyList_Check(t->rest)) {
        PyErr_SetString(PyExc_TypeError, "loop(): a top set's heaps are lists");
        return -1;
    }
    return 0;
}

#define TOP_CALLBACK(ctx, i, expr)                                                                          \
    do {                                                                                                    \
        if (top_out(ctx, i) < 0 || (expr) < 0 || top_in(ctx, i) < 0) goto out;                              \
    } while (0)

static int sync_out(Ctx *c)
{
    if (set_long(c->self, s_eligible, c->eligible) < 0 || set_long(c->self, s_positive, c->positive) < 0 ||
        set_double(c->self, s_total, c->total) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < c->ntops; i++)
        if (set_double(c->tops[i].obj, s_top_total, c->tops[i].total) < 0) return -1;
    return 0;
}

static int sync_in(Ctx *c)
{
    if (get_long(c->self, s_eligible, &c->eligible) < 0 || get_long(c->self, s_positive, &c->positive) < 0 ||
        get_double(c->self, s_total, &c->total) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < c->ntops; i++) {
        long k;
        if (get_long(c->tops[i].obj, s_k, &k) < 0 || top_in(c, i) < 0) return -1;
        c->tops[i].k = k;
    }
    return 0;
}

/* a member counted for the first time, a lurker: `self._eligible += 1`, `tier_counts[LURKER] += 1`,
 * and the top sets resized when their k may change */
static int new_lurker(Ctx *c, PyObject *tier_counts, long lurker, long *k_high)
{
    c->eligible += 1;
    PyObject *more = PyNumber_Add(PyList_GET_ITEM(tier_counts, lurker), one);
    if (more == NULL) return -1;
    PyList_SetItem(tier_counts, lurker, more);
    if (c->eligible <= *k_high) return 0;
    if (sync_out(c) < 0 || call_none(c->self, s_resize_tops, PyTuple_New(0)) < 0 || sync_in(c) < 0) return -1;
    return read_k_high(c->self, k_high);
}

static void ctx_clear(Ctx *c)
{
    for (Py_ssize_t i = 0; i < c->ntops; i++) {
        Py_CLEAR(c->tops[i].top);
        Py_CLEAR(c->tops[i].rest);
    }
}

/* a call into Python: what C holds goes back first, and is read again after */
#define CALLBACK(ctx, expr)                                                                                 \
    do {                                                                                                    \
        if (sync_out(ctx) < 0 || (expr) < 0 || sync_in(ctx) < 0) goto out;                                  \
    } while (0)

static PyObject *loop(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 16) {
        PyErr_SetString(PyExc_TypeError, "loop() takes 16 arguments");
        return NULL;
    }
    PyObject *self = args[0], *events = args[1], *actors = args[2], *targets = args[3];
    long known = PyLong_AsLong(args[4]);
    if (known == -1 && PyErr_Occurred()) return NULL;
    PyObject *changes = args[5], *rows = args[6], *columns = args[7], *heaps = args[8], *tops = args[9];
    PyObject *amb_changed = args[10], *active = args[11], *tier_counts = args[12], *numbers = args[13];
    PyObject *codes = args[14], *heappush = args[15];
    if (!PyList_Check(events) || !PyList_Check(actors) || !PyList_Check(targets) || !PyList_Check(changes) ||
        !PyList_Check(rows) || !PyTuple_Check(columns) || PyTuple_GET_SIZE(columns) != C_N || !PyTuple_Check(heaps) ||
        PyTuple_GET_SIZE(heaps) != 2 || !PyList_Check(tops) || !PyList_Check(amb_changed) || !PyDict_Check(active) ||
        !PyList_Check(tier_counts) || !PyTuple_Check(numbers) || PyTuple_GET_SIZE(numbers) != 16 ||
        !PyTuple_Check(codes) || PyTuple_GET_SIZE(codes) != 5) {
        PyErr_SetString(PyExc_TypeError, "loop(): arguments of the wrong shape");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(events);
    if (PyList_GET_SIZE(actors) != n || PyList_GET_SIZE(targets) != n) {
        PyErr_SetString(PyExc_ValueError, "loop(): events, actors and targets differ in length");
        return NULL;
    }
    /* every event a record with a float time and small int codes, or the Python loop takes the batch */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(events, i);
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 11 || !PyFloat_CheckExact(PyTuple_GET_ITEM(e, 4)) ||
            !PyLong_CheckExact(PyTuple_GET_ITEM(e, 1)) || !PyLong_CheckExact(PyTuple_GET_ITEM(e, 5)) ||
            !PyLong_CheckExact(PyTuple_GET_ITEM(e, 8)) || !PyLong_CheckExact(PyList_GET_ITEM(actors, i)) ||
            !PyLong_CheckExact(PyList_GET_ITEM(targets, i)))
            Py_RETURN_NONE;
    }
    const long JOIN = PyLong_AsLong(PyTuple_GET_ITEM(codes, 0)), COMMENT = PyLong_AsLong(PyTuple_GET_ITEM(codes, 1));
    const long LURKER = PyLong_AsLong(PyTuple_GET_ITEM(codes, 2)), CURATOR = PyLong_AsLong(PyTuple_GET_ITEM(codes, 3));
    const long CREATOR = PyLong_AsLong(PyTuple_GET_ITEM(codes, 4));
    const double rate = num(numbers, 0), landmark = num(numbers, 1);
    double clock = num(numbers, 2), f = num(numbers, 3);
    const double active_window = num(numbers, 4), creator_threshold = num(numbers, 5), creator_floor = num(numbers, 6);
    const double curator_threshold = num(numbers, 7), curator_floor = num(numbers, 8);
    PyObject *tie_o = PyTuple_GET_ITEM(numbers, 9);
    int has_tie = tie_o != Py_None;
    double tie = has_tie ? PyFloat_AsDouble(tie_o) : 0.0;
    long k_high = PyLong_AsLong(PyTuple_GET_ITEM(numbers, 10));
    const Py_ssize_t rest_cap = PyLong_AsSsize_t(PyTuple_GET_ITEM(numbers, 11));
    const double MINUTE = num(numbers, 12);
    double weights[4] = {0.0, num(numbers, 13), num(numbers, 14), num(numbers, 15)};
    if (PyErr_Occurred()) return NULL;
    PyObject *creators = PyTuple_GET_ITEM(heaps, 0), *curators = PyTuple_GET_ITEM(heaps, 1);
    if (!PyList_Check(creators) || !PyList_Check(curators)) {
        PyErr_SetString(PyExc_TypeError, "loop(): heaps are lists");
        return NULL;
    }

    Ctx ctx = {.self = self, .ntops = PyList_GET_SIZE(tops)};
    if (ctx.ntops > MAX_TOPS) {
        PyErr_SetString(PyExc_ValueError, "loop(): more top sets than it holds");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < ctx.ntops; i++) {
        ctx.tops[i].obj = PyList_GET_ITEM(tops, i);
        if (get_long(ctx.tops[i].obj, s_bit, &ctx.tops[i].bit) < 0) return NULL;
    }
    Py_buffer buf[C_N];
    int held = 0, synced = 0;
    PyObject *result = NULL;
    if (sync_in(&ctx) < 0) goto out;
    synced = 1;
    for (; held < C_N; held++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(columns, held), &buf[held], PyBUF_WRITABLE | PyBUF_FORMAT) < 0)
            goto out;
    }
    Py_ssize_t members = buf[C_CREATION].len / 8;
    for (int c = 0; c < C_N; c++) {
        const char *fmt = buf[c].format ? buf[c].format : "B";
        int ok;
        if (c <= C_JOIN_TS) ok = buf[c].itemsize == 8 && fmt[0] == 'd';
        else if (c == C_EVENTS) ok = buf[c].itemsize == 4 && fmt[0] == 'I';
        else ok = buf[c].itemsize == 1;
        if (!ok || buf[c].len / buf[c].itemsize != members) {
            PyErr_SetString(PyExc_TypeError, "loop(): a column of the wrong type or length");
            goto out;
        }
    }
    double *creation = buf[C_CREATION].buf, *curation = buf[C_CURATION].buf, *received = buf[C_RECEIVED].buf;
    double *first_seen = buf[C_FIRST].buf, *last_active = buf[C_LAST_ACTIVE].buf;
    double *last_comment = buf[C_LAST_COMMENT].buf, *join_ts = buf[C_JOIN_TS].buf;
    uint32_t *counts = buf[C_EVENTS].buf;
    unsigned char *tiers = buf[C_TIER].buf, *role_of = buf[C_ROLE].buf, *excluded = buf[C_EXCLUDED].buf;
    unsigned char *join_source = buf[C_JOIN_SOURCE].buf, *ranks = buf[C_RANKS].buf;

    int has_minute = clock != -INFINITY;
    double minute = has_minute ? floor_div(clock, MINUTE) : 0.0;
    double active_since = clock - active_window;
    double low_c, low_u;
    if (heap_low(creators, &low_c, 0) < 0 || heap_low(curators, &low_u, 0) < 0) goto out;
    int has_g = 0;
    double g_ts = 0.0, g = 1.0;

    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(events, i);
        const long kind = PyLong_AsLong(PyTuple_GET_ITEM(e, 1));
        const double ts = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(e, 4));
        const long role = PyLong_AsLong(PyTuple_GET_ITEM(e, 5));
        const long source = PyLong_AsLong(PyTuple_GET_ITEM(e, 8));
        const Py_ssize_t a = PyLong_AsSsize_t(PyList_GET_ITEM(actors, i));
        const Py_ssize_t t = PyLong_AsSsize_t(PyList_GET_ITEM(targets, i));
        if (PyErr_Occurred()) goto out;
        if (a < 0 || a >= members || t >= members || kind < 0 || kind > 3 || role < 0 || role > 255 || source < 0 ||
            source > 255) {
            PyErr_SetString(PyExc_IndexError, "loop(): a member row or code out of range");
            goto out;
        }
        int advanced;
        if (ts > clock) {
            advanced = 1;
            double this_minute = floor_div(ts, MINUTE);
            if (!has_minute || this_minute != minute) {
                if (has_minute) {
                    if (sync_out(&ctx) < 0) goto out;
                    PyObject *row = call(self, s_row, Py_BuildValue("(dd)", minute * MINUTE, clock));
                    if (row == NULL || sync_in(&ctx) < 0) {
                        Py_XDECREF(row);
                        goto out;
                    }
                    int r = PyList_Append(rows, row);
                    Py_DECREF(row);
                    if (r < 0) goto out;
                }
                minute = this_minute;
                has_minute = 1;
            }
            clock = ts;
            active_since = clock - active_window;
            if (py_exp(-rate * (clock - landmark), &f) < 0) goto out;
        } else {
            advanced = 0;
        }
        if (a >= known) {
            role_of[a] = (unsigned char)role;
            known = a + 1;
            if (!role && !excluded[a] && new_lurker(&ctx, tier_counts, LURKER, &k_high) < 0) goto out;
        }
        if (ts < first_seen[a]) first_seen[a] = ts;
        if (counts[a] == UINT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "unsigned int is greater than maximum");
            goto out;
        }
        counts[a] += 1;
        if (ts >= last_active[a]) {
            last_active[a] = ts;
            if (role != role_of[a]) {
                CALLBACK(&ctx, call_none(self, s_set_role, Py_BuildValue("(nld)", a, role, clock)));
                if (read_k_high(self, &k_high) < 0) goto out;
            }
        }
        if (kind == JOIN) {
            if (ts < join_ts[a]) {
                join_ts[a] = ts;
                join_source[a] = (unsigned char)source;
            }
        } else {
            if (!has_g || ts != g_ts) {
                has_g = 1;
                g_ts = ts;
                if (py_exp(rate * (ts - landmark), &g) < 0) goto out;
            }
            const double w = weights[kind] * g;
            if (kind == COMMENT) {
                const double old = creation[a];
                const double nw = creation[a] = old + w;
                if (nw != old && !role_of[a] && !excluded[a]) {
                    const double grown = nw - old;
                    ctx.total += grown;
                    if (old == 0.0) ctx.positive += 1;
                    const long r = ranks[a];
                    for (Py_ssize_t k = 0; k < ctx.ntops; k++) {
                        Top *top = &ctx.tops[k];
                        if (r & top->bit) {
                            top->total += grown;
                        } else if (PyList_GET_SIZE(top->top) >= top->k) {
                            double smallest;
                            if (heap_low(top->top, &smallest, 1) < 0) goto out;
                            if (nw < smallest) {
                                /* under the set's smallest key: stays outside (heappush runs no Python code) */
                                PyObject *entry = Py_BuildValue("(dn)", -nw, -a);
                                PyObject *r2 = entry ? PyObject_CallFunctionObjArgs(heappush, top->rest, entry, NULL)
                                                     : NULL;
                                Py_XDECREF(entry);
                                if (r2 == NULL) goto out;
                                Py_DECREF(r2);
                                if (PyList_GET_SIZE(top->rest) > rest_cap)
                                    TOP_CALLBACK(&ctx, k, call_none(top->obj, s_compact_rest, Py_BuildValue("()")));
                            } else {
                                TOP_CALLBACK(&ctx, k, call_none(top->obj, s_grew, Py_BuildValue("(ndd)", a, old, nw)));
                            }
                        } else {
                            TOP_CALLBACK(&ctx, k, call_none(top->obj, s_grew, Py_BuildValue("(ndd)", a, old, nw)));
                        }
                    }
                    if (has_tie && old == tie) {
                        PyObject *ai = PyLong_FromSsize_t(a);
                        if (ai == NULL || PyList_Append(amb_changed, ai) < 0) {
                            Py_XDECREF(ai);
                            goto out;
                        }
                        Py_DECREF(ai);
                    }
                }
                if (ts > last_comment[a]) {
                    last_comment[a] = ts;
                    if (tiers[a] == CREATOR && ts >= active_since && !role_of[a] && !excluded[a]) {
                        PyObject *ai = PyLong_FromSsize_t(a);
                        if (ai == NULL) goto out;
                        int in = PyDict_Contains(active, ai);
                        Py_DECREF(ai);
                        if (in < 0) goto out;
                        if (!in) CALLBACK(&ctx, call_none(self, s_activate, Py_BuildValue("(nd)", a, ts)));
                    }
                }
                if (tiers[a] != CREATOR && nw * f >= creator_threshold) {
                    CALLBACK(&ctx, call_none(self, s_change_tier, Py_BuildValue("(nlddO)", a, CREATOR, clock, f, changes)));
                    if (heap_low(creators, &low_c, 1) < 0 || heap_low(curators, &low_u, 0) < 0) goto out;
                }
            } else {
                const double nw = curation[a] = curation[a] + w;
                if (tiers[a] == LURKER && nw * f >= curator_threshold) {
                    CALLBACK(&ctx, call_none(self, s_change_tier, Py_BuildValue("(nlddO)", a, CURATOR, clock, f, changes)));
                    if (heap_low(curators, &low_u, 1) < 0) goto out;
                }
            }
            if (t >= 0) {
                if (t >= known) {
                    known = t + 1;
                    if (!role_of[t] && !excluded[t] && new_lurker(&ctx, tier_counts, LURKER, &k_high) < 0) goto out;
                }
                if (ts < first_seen[t]) first_seen[t] = ts;
                received[t] += w;
                if (has_tie && creation[t] == tie) {
                    PyObject *ti = PyLong_FromSsize_t(t);
                    if (ti == NULL || PyList_Append(amb_changed, ti) < 0) {
                        Py_XDECREF(ti);
                        goto out;
                    }
                    Py_DECREF(ti);
                }
            }
        }
        if (advanced) {
            if (low_c * f < creator_floor) {
                CALLBACK(&ctx, call_none(self, s_demote, Py_BuildValue("(OlOdddO)", creators, CREATOR,
                                         PyTuple_GET_ITEM(columns, C_CREATION), creator_floor, clock, f, changes)));
                if (heap_low(creators, &low_c, 0) < 0 || heap_low(curators, &low_u, 0) < 0) goto out;
            }
            if (low_u * f < curator_floor) {
                CALLBACK(&ctx, call_none(self, s_demote, Py_BuildValue("(OlOdddO)", curators, CURATOR,
                                         PyTuple_GET_ITEM(columns, C_CURATION), curator_floor, clock, f, changes)));
                if (heap_low(curators, &low_u, 0) < 0) goto out;
            }
        }
        if (PyList_GET_SIZE(amb_changed)) {
            CALLBACK(&ctx, call_none(self, s_reconcile, Py_BuildValue("(Odd)", changes, clock, f)));
            PyObject *tv = PyObject_GetAttr(self, s_tie);
            if (tv == NULL) goto out;
            has_tie = tv != Py_None;
            tie = has_tie ? PyFloat_AsDouble(tv) : 0.0;
            Py_DECREF(tv);
            if (PyErr_Occurred()) goto out;
        }
    }
    if (sync_out(&ctx) < 0) goto out;
    synced = 0;
    result = PyFloat_FromDouble(clock);
out:
    if (synced) { /* an error: what C held goes back all the same, as the Python loop would have left it */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        if (sync_out(&ctx) < 0) PyErr_Clear();
        PyErr_Restore(type, value, tb);
    }
    ctx_clear(&ctx);
    for (int c = 0; c < held; c++) PyBuffer_Release(&buf[c]);
    return result;
}

static PyMethodDef methods[] = {
    {"loop", (PyCFunction)(void (*)(void))loop, METH_FASTCALL, "CommunityScorer._score's per-event loop, in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_score_loop", NULL, -1, methods};

PyMODINIT_FUNC PyInit__score_loop(void)
{
    PyObject **names[] = {&s_eligible, &s_total, &s_positive, &s_tie, &s_k_range, &s_row, &s_resize_tops,
                          &s_set_role, &s_activate, &s_change_tier, &s_demote, &s_reconcile, &s_bit, &s_top, &s_k,
                          &s_rest, &s_compact_rest, &s_grew, &s_top_total};
    const char *texts[] = {"_eligible", "_total", "_positive", "_tie", "_k_range", "_row", "_resize_tops",
                           "_set_role", "_activate", "_change_tier", "_demote", "_reconcile", "bit", "top", "k",
                           "rest", "compact_rest", "grew", "total"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        *names[i] = PyUnicode_InternFromString(texts[i]);
        if (*names[i] == NULL) return NULL;
    }
    one = PyLong_FromLong(1);
    if (one == NULL) return NULL;
    return PyModule_Create(&module);
}
