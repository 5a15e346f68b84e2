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

static PyMethodDef methods[] = {
    {"probe", probe, METH_VARARGS, "Row indexes of member ids in a MemberIndex's table (-1: not known)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_member_probe", NULL, -1, methods};

PyMODINIT_FUNC PyInit__member_probe(void) { return PyModule_Create(&module); }
