#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* The member index's lookup (streams/scoring/member_index.py), in C: built by `make native`
 * beside the mypyc modules (setup.py, streams/native.py), used when it is there.
 *
 * probe(names, slots, hashes, ends, blob, collisions) -> list[int]: the row index of each id in
 * the open-addressing table, -1 when it is not known, -2 when it is not an exact str (the
 * caller looks those up itself: hashing a str subclass could run Python code). The same
 * probe as MemberIndex._probe: linear, from hash(id) & mask, a hit checked against the
 * stored UTF-8 bytes, an id whose hash another member holds looked up in `collisions`. */
static PyObject *
probe(PyObject *self, PyObject *args)
{
    PyObject *names, *slots_o, *hashes_o, *ends_o, *blob_o, *collisions;
    if (!PyArg_ParseTuple(args, "O!OOOOO!", &PyList_Type, &names, &slots_o, &hashes_o, &ends_o, &blob_o,
                          &PyDict_Type, &collisions))
        return NULL;
    Py_buffer sb, hb, eb, bb;  /* array('i'), array('I'), array('I'), bytearray: held (not resizable) for the call */
    if (PyObject_GetBuffer(slots_o, &sb, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(hashes_o, &hb, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&sb); return NULL; }
    if (PyObject_GetBuffer(ends_o, &eb, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&sb); PyBuffer_Release(&hb); return NULL; }
    if (PyObject_GetBuffer(blob_o, &bb, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&sb); PyBuffer_Release(&hb); PyBuffer_Release(&eb); return NULL;
    }
    const int32_t *slots = (const int32_t *)sb.buf;
    const uint32_t *hashes = (const uint32_t *)hb.buf;
    const uint32_t *ends = (const uint32_t *)eb.buf;
    const char *blob = (const char *)bb.buf;
    Py_ssize_t nslots = sb.len / 4, members = eb.len / 4;
    uint64_t mask = (uint64_t)nslots - 1;
    PyObject *out = NULL;
    if (nslots == 0 || (nslots & (nslots - 1)) != 0 || hb.len != eb.len) {
        PyErr_SetString(PyExc_ValueError, "not a member index: slots must be a power of two, one hash per member");
        goto fail;
    }
    Py_ssize_t n = PyList_GET_SIZE(names);
    out = PyList_New(n);
    if (out == NULL) goto fail;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *name = PyList_GET_ITEM(names, k);
        long found = -1;
        if (!PyUnicode_CheckExact(name)) {
            found = -2;
            goto store;
        }
        Py_hash_t h = PyObject_Hash(name);
        if (h == -1 && PyErr_Occurred()) goto fail_out;
        uint32_t h32 = (uint32_t)(uint64_t)h;
        uint64_t at = (uint64_t)h & mask;
        for (;;) {
            int32_t i = slots[at];
            if (i < 0) break;
            if (i >= members) { PyErr_SetString(PyExc_RuntimeError, "member index slot out of range"); goto fail_out; }
            if (hashes[i] == h32) {
                Py_ssize_t size;
                const char *utf8 = PyUnicode_AsUTF8AndSize(name, &size);
                if (utf8 == NULL) goto fail_out;
                uint32_t start = i ? ends[i - 1] : 0;
                if (start > ends[i] || (Py_ssize_t)ends[i] > bb.len) {
                    PyErr_SetString(PyExc_RuntimeError, "member index ends out of range");
                    goto fail_out;
                }
                if ((Py_ssize_t)(ends[i] - start) == size && memcmp(blob + start, utf8, (size_t)size) == 0) {
                    found = i;
                } else {
                    PyObject *v = PyDict_GetItemWithError(collisions, name);
                    if (v == NULL && PyErr_Occurred()) goto fail_out;
                    if (v != NULL) {
                        found = PyLong_AsLong(v);
                        if (found == -1 && PyErr_Occurred()) goto fail_out;
                    }
                }
                break;
            }
            at = (at + 1) & mask;
        }
    store:;
        PyObject *v = PyLong_FromLong(found);
        if (v == NULL) goto fail_out;
        PyList_SET_ITEM(out, k, v);
    }
    PyBuffer_Release(&sb); PyBuffer_Release(&hb); PyBuffer_Release(&eb); PyBuffer_Release(&bb);
    return out;
fail_out:
fail:
    Py_XDECREF(out);
    PyBuffer_Release(&sb); PyBuffer_Release(&hb); PyBuffer_Release(&eb); PyBuffer_Release(&bb);
    return NULL;
}

/* A growable byte buffer for what `append` adds. */
typedef struct { char *buf; size_t len, cap; } Bytes;

static int
bytes_put(Bytes *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *grown = PyMem_Realloc(b->buf, cap);
        if (grown == NULL) { PyErr_NoMemory(); return -1; }
        b->buf = grown;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, src, n);
    b->len += n;
    return 0;
}

/* append(names, found, slots, hashes, ends, blob, collisions) -> (blob_add, ends_add, hashes_add):
 * the ids of `names` whose `found` is -1 (not known: from `probe`) numbered from len(ends) on,
 * in list order, as MemberIndex.resolve's Python loop numbers them. Each takes the first free
 * slot of its probe (written into `slots`, which the caller has grown to hold all of them) or,
 * when its hash is taken by another id, goes into `collisions`; an id met twice keeps its first
 * index. `found` is updated in place. Returned: the UTF-8 bytes, end offsets and hashes to add
 * to `blob`, `ends` and `hashes` (the caller appends them: those buffers cannot grow here). */
static PyObject *
append(PyObject *self, PyObject *args)
{
    PyObject *names, *found, *slots_o, *hashes_o, *ends_o, *blob_o, *collisions;
    if (!PyArg_ParseTuple(args, "O!O!OOOOO!", &PyList_Type, &names, &PyList_Type, &found, &slots_o, &hashes_o,
                          &ends_o, &blob_o, &PyDict_Type, &collisions))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(names);
    if (PyList_GET_SIZE(found) != n) {
        PyErr_SetString(PyExc_ValueError, "one found index per name");
        return NULL;
    }
    Py_buffer sb, hb, eb, bb;
    if (PyObject_GetBuffer(slots_o, &sb, PyBUF_WRITABLE) < 0) return NULL;
    if (PyObject_GetBuffer(hashes_o, &hb, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&sb); return NULL; }
    if (PyObject_GetBuffer(ends_o, &eb, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&sb); PyBuffer_Release(&hb); return NULL; }
    if (PyObject_GetBuffer(blob_o, &bb, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&sb); PyBuffer_Release(&hb); PyBuffer_Release(&eb); return NULL;
    }
    int32_t *slots = (int32_t *)sb.buf;
    const uint32_t *hashes = (const uint32_t *)hb.buf;
    const uint32_t *ends = (const uint32_t *)eb.buf;
    const char *blob = (const char *)bb.buf;
    Py_ssize_t nslots = sb.len / 4, members = eb.len / 4;
    uint64_t mask = (uint64_t)nslots - 1;
    Bytes nblob = {0}, nends = {0}, nhashes = {0};  /* what this call adds, indexes members.. */
    PyObject *out = NULL;
    if (nslots == 0 || (nslots & (nslots - 1)) != 0 || hb.len != eb.len) {
        PyErr_SetString(PyExc_ValueError, "not a member index: slots must be a power of two, one hash per member");
        goto fail;
    }
    const uint32_t base = members ? ends[members - 1] : 0;  /* where the added bytes start */
    uint64_t size = base;
    if ((Py_ssize_t)size > bb.len) { PyErr_SetString(PyExc_RuntimeError, "member index ends out of range"); goto fail; }
    Py_ssize_t added = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *was = PyList_GET_ITEM(found, k);
        long prior = PyLong_AsLong(was);
        if (prior == -1 && PyErr_Occurred()) goto fail;
        if (prior != -1) continue;
        PyObject *name = PyList_GET_ITEM(names, k);
        if (!PyUnicode_CheckExact(name)) { PyErr_SetString(PyExc_TypeError, "member ids must be str"); goto fail; }
        Py_hash_t h = PyObject_Hash(name);
        if (h == -1 && PyErr_Occurred()) goto fail;
        Py_ssize_t len;
        const char *utf8 = PyUnicode_AsUTF8AndSize(name, &len);
        if (utf8 == NULL) goto fail;
        uint32_t h32 = (uint32_t)(uint64_t)h;
        uint64_t at = (uint64_t)h & mask;
        long known = -1;
        int taken = 0;  /* the hash is held by another id: `collisions` */
        for (Py_ssize_t steps = 0;; steps++) {
            int32_t i = slots[at];
            if (i < 0) break;
            if (i >= members + added || steps >= nslots) {
                PyErr_SetString(PyExc_RuntimeError, "member index table full or corrupt: grow it before appending");
                goto fail;
            }
            const uint32_t *hs = i < members ? hashes + i : (const uint32_t *)nhashes.buf + (i - members);
            if (*hs == h32) {
                const char *stored;
                uint32_t start, end;
                if (i < members) {
                    start = i ? ends[i - 1] : 0;
                    end = ends[i];
                    if (start > end || (Py_ssize_t)end > bb.len) {
                        PyErr_SetString(PyExc_RuntimeError, "member index ends out of range");
                        goto fail;
                    }
                    stored = blob + start;
                } else {  /* added by this call */
                    const uint32_t *ne = (const uint32_t *)nends.buf;
                    Py_ssize_t j = i - members;
                    start = j ? ne[j - 1] : base;
                    end = ne[j];
                    stored = nblob.buf + (start - base);
                }
                if ((Py_ssize_t)(end - start) == len && memcmp(stored, utf8, (size_t)len) == 0) {
                    known = i;
                } else {
                    taken = 1;
                    PyObject *v = PyDict_GetItemWithError(collisions, name);
                    if (v == NULL && PyErr_Occurred()) goto fail;
                    if (v != NULL) {
                        known = PyLong_AsLong(v);
                        if (known == -1 && PyErr_Occurred()) goto fail;
                    }
                }
                break;
            }
            at = (at + 1) & mask;
        }
        if (known < 0) {  /* new: the next index */
            if (size + (uint64_t)len > 0xFFFFFFFFu) {
                PyErr_SetString(PyExc_OverflowError, "over 4 GiB of member ids in one community: beyond the member index");
                goto fail;
            }
            known = members + added;
            size += (uint64_t)len;
            uint32_t end32 = (uint32_t)size;
            if (bytes_put(&nblob, utf8, (size_t)len) < 0 || bytes_put(&nends, &end32, 4) < 0
                || bytes_put(&nhashes, &h32, 4) < 0)
                goto fail;
            added++;
            if (taken) {
                PyObject *v = PyLong_FromLong(known);
                if (v == NULL) goto fail;
                int rc = PyDict_SetItem(collisions, name, v);
                Py_DECREF(v);
                if (rc < 0) goto fail;
            } else {
                slots[at] = (int32_t)known;
            }
        }
        PyObject *v = PyLong_FromLong(known);
        if (v == NULL) goto fail;
        if (PyList_SetItem(found, k, v) < 0) goto fail;  /* steals v */
    }
    out = Py_BuildValue("(y#y#y#)", nblob.buf ? nblob.buf : "", (Py_ssize_t)nblob.len, nends.buf ? nends.buf : "",
                        (Py_ssize_t)nends.len, nhashes.buf ? nhashes.buf : "", (Py_ssize_t)nhashes.len);
fail:
    PyMem_Free(nblob.buf); PyMem_Free(nends.buf); PyMem_Free(nhashes.buf);
    PyBuffer_Release(&sb); PyBuffer_Release(&hb); PyBuffer_Release(&eb); PyBuffer_Release(&bb);
    return out;
}

static PyMethodDef methods[] = {
    {"probe", probe, METH_VARARGS, "Row indexes of member ids in a MemberIndex's table (-1: not known)."},
    {"append", append, METH_VARARGS, "Number the ids `probe` did not know, in order; the bytes to add (see source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_member_probe", NULL, -1, methods};

PyMODINIT_FUNC PyInit__member_probe(void) { return PyModule_Create(&module); }
