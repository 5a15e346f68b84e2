#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* The decoder's per-line step (streams/decode.py `_record` and `wire_time`), in C: built by
 * `make native` beside the mypyc modules (setup.py, streams/native.py), used when it is there.
 *
 * configure(record_type, good_source, sources, type_codes, role_codes, join_codes, max_fp, wire_time)
 *     once, with what decode.py's Python twin uses: the EventRecord type, the source check and
 *     its cache, the code tables, MAX_FINGERPRINT and the Python `wire_time` (called for any
 *     time this file does not read itself).
 * record(wire) -> EventRecord | None: what `_record(wire)` returns, for a WireEvent msgspec
 *     accepted: None when a rule across fields fails or the time is not one the wire allows.
 * wire_time(text) -> float | None: what decode.wire_time(text) returns.
 *
 * A time is read here only in a strict subset of the wire's form that datetime.fromisoformat
 * accepts exactly so (ASCII; month, day, hour, minute, second in range; a zone of Z or
 * +-HH:MM with HH <= 23, MM <= 59; within 2^53 microseconds of 1970, ~285 years, where the
 * division below rounds once, as Python's int / int does): anything else goes to the Python
 * `wire_time`, which decides. So the two agree on every text (tests/unit/test_decode_properties.py). */

static PyObject *record_type, *good_source, *sources, *type_codes, *role_codes, *join_codes, *max_fp, *py_wire_time;
static PyObject *s_join_kind, *s_comment_kind;
static PyObject *s_type, *s_source, *s_fp, *s_join, *s_links, *s_time, *s_event, *s_community, *s_member, *s_role,
    *s_target, *s_author;

#define DEFER 2  /* not read here: ask the Python twin */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int64_t days_from_civil(int y, int m, int d)
{
    /* proleptic Gregorian days since 1970-01-01 (H. Hinnant's algorithm), as datetime counts them */
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* 1: read into *ts; 0: not a wire time (what the Python twin says too); DEFER: ask the twin */
static int read_time(PyObject *text, double *ts)
{
    if (!PyUnicode_Check(text) || !PyUnicode_IS_ASCII(text)) return DEFER;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const char *s = (const char *)PyUnicode_DATA(text);
    if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') return 0;
    Py_ssize_t zone_at;
    int offset = 0;
    if (s[n - 1] == 'Z') {
        zone_at = n - 1;
    } else if (s[n - 3] == ':' && (s[n - 6] == '+' || s[n - 6] == '-')) {
        zone_at = n - 6;
        int hh, mm;
        if (!digits(s + n - 5, 2, &hh) || !digits(s + n - 2, 2, &mm) || hh > 23 || mm > 59) return DEFER;
        offset = (hh * 3600 + mm * 60) * (s[n - 6] == '-' ? -1 : 1);
    } else {
        return 0;
    }
    int micro = 0;
    if (zone_at != 19) {
        if (s[19] != '.' || zone_at < 21 || zone_at > 26) return 0;
        int k = (int)(zone_at - 20);
        if (!digits(s + 20, k, &micro)) return DEFER;
        for (int i = k; i < 6; i++) micro *= 10;
    }
    int y, mo, d, h, mi, se;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) ||
        !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return DEFER;
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59) return DEFER;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > month_days[mo - 1] + (mo == 2 && leap)) return DEFER;
    int64_t seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
    const int64_t limit = (int64_t)1 << 53;
    if (seconds > limit / 1000000 - 1 || seconds < -(limit / 1000000) + 1) return DEFER;
    int64_t total = seconds * 1000000 + micro;  /* exact in a double: |total| < 2^53 */
    *ts = (double)total / 1e6;                   /* one rounding, as int / int in Python */
    return 1;
}

/* a new reference to the time as a float, Py_None when it is not a wire time, NULL on error */
static PyObject *time_of(PyObject *text)
{
    double ts;
    int got = read_time(text, &ts);
    if (got == 1) return PyFloat_FromDouble(ts);
    if (got == 0) Py_RETURN_NONE;
    return PyObject_CallOneArg(py_wire_time, text);
}

static PyObject *wire_time(PyObject *self, PyObject *text)
{
    if (py_wire_time == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "wire_record.configure() first");
        return NULL;
    }
    return time_of(text);
}

static PyObject *configure(PyObject *self, PyObject *args)
{
    PyObject *rt, *gs, *src, *tc, *rc, *jc, *mf, *wt;
    if (!PyArg_ParseTuple(args, "O!OO!O!O!O!OO", &PyType_Type, &rt, &gs, &PyDict_Type, &src, &PyDict_Type, &tc,
                          &PyDict_Type, &rc, &PyDict_Type, &jc, &mf, &wt))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)rt, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "the record type must be a tuple type");
        return NULL;
    }
    PyObject **slots[] = {&record_type, &good_source, &sources, &type_codes, &role_codes, &join_codes, &max_fp,
                          &py_wire_time};
    PyObject *values[] = {rt, gs, src, tc, rc, jc, mf, wt};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        Py_INCREF(values[i]);
        Py_XSETREF(*slots[i], values[i]);
    }
    Py_RETURN_NONE;
}

static PyObject *record(PyObject *self, PyObject *w)
{
    if (record_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "wire_record.configure() first");
        return NULL;
    }
    PyObject *names[] = {s_event, s_type, s_community, s_member, s_time, s_role, s_target, s_author, s_join,
                         s_fp, s_links, s_source};
    enum { EVENT, TYPE, COMMUNITY, MEMBER, TIME, ROLE, TARGET, AUTHOR, JOIN, FP, LINKS, SOURCE, N };
    PyObject *f[N] = {NULL};
    PyObject *out = NULL, *ts = NULL;
    for (int i = 0; i < N; i++) {
        f[i] = PyObject_GetAttr(w, names[i]);
        if (f[i] == NULL) goto done;
    }
    /* the same rules, in the same order, as decode._record */
    PyObject *ok = PyDict_GetItemWithError(sources, f[SOURCE]);  /* borrowed */
    int good;
    if (ok != NULL) {
        good = PyObject_IsTrue(ok);
    } else {
        if (PyErr_Occurred()) goto done;
        PyObject *r = PyObject_CallOneArg(good_source, f[SOURCE]);
        if (r == NULL) goto done;
        good = PyObject_IsTrue(r);
        Py_DECREF(r);
    }
    if (good < 0) goto done;
    if (!good) goto none;
    if (f[FP] != Py_None) {
        int over = PyObject_RichCompareBool(f[FP], max_fp, Py_GT);
        if (over < 0) goto done;
        if (over) goto none;
    }
    int is_join = PyObject_RichCompareBool(f[TYPE], s_join_kind, Py_EQ);
    int is_comment = PyObject_RichCompareBool(f[TYPE], s_comment_kind, Py_EQ);
    if (is_join < 0 || is_comment < 0) goto done;
    if ((f[JOIN] == Py_None) == is_join) goto none;
    if (!is_comment) {
        if (f[FP] != Py_None) goto none;
        int links = PyObject_IsTrue(f[LINKS]);
        if (links < 0) goto done;
        if (links) goto none;
    }
    ts = time_of(f[TIME]);
    if (ts == NULL) goto done;
    if (ts == Py_None) goto none;
    PyObject *kind = PyDict_GetItemWithError(type_codes, f[TYPE]);  /* borrowed */
    PyObject *role = kind ? PyDict_GetItemWithError(role_codes, f[ROLE]) : NULL;
    PyObject *join = role ? PyDict_GetItemWithError(join_codes, f[JOIN]) : NULL;
    if (join == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, kind == NULL ? f[TYPE] : role == NULL ? f[ROLE] : f[JOIN]);
        goto done;
    }
    PyObject *items[] = {f[EVENT], kind, f[COMMUNITY], f[MEMBER], ts, role, f[TARGET], f[AUTHOR], join, f[FP], f[LINKS]};
    const Py_ssize_t size = (Py_ssize_t)(sizeof(items) / sizeof(items[0]));
    out = ((PyTypeObject *)record_type)->tp_alloc((PyTypeObject *)record_type, size);
    if (out == NULL) goto done;
    for (Py_ssize_t i = 0; i < size; i++) {
        Py_INCREF(items[i]);
        PyTuple_SET_ITEM(out, i, items[i]);
    }
    goto done;
none:
    out = Py_None;
    Py_INCREF(out);
done:
    Py_XDECREF(ts);
    for (int i = 0; i < N; i++) Py_XDECREF(f[i]);
    return out;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "What the Python twin uses (streams/decode.py)."},
    {"record", record, METH_O, "decode._record(wire), in C."},
    {"wire_time", wire_time, METH_O, "decode.wire_time(text), in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_wire_record", NULL, -1, methods};

PyMODINIT_FUNC PyInit__wire_record(void)
{
    PyObject **names[] = {&s_type, &s_source, &s_fp, &s_join, &s_links, &s_time, &s_event, &s_community,
                          &s_member, &s_role, &s_target, &s_author, &s_join_kind, &s_comment_kind};
    const char *texts[] = {"type", "source", "content_fingerprint", "join_source", "link_count", "occurred_at",
                           "event_id", "community_id", "member_id", "actor_role", "target_id", "target_author_id",
                           "join", "comment"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        *names[i] = PyUnicode_InternFromString(texts[i]);
        if (*names[i] == NULL) return NULL;
    }
    return PyModule_Create(&module);
}
