/* sqlite3 cursor methods timed in C: ``execute`` and ``fetchone``.
 *
 * They are the hot path of perfpilot.instrument.sql_sqlite: each statement an
 * app runs passes through both. In Python each costs a frame and about a
 * hundred bytecodes; here, a few attribute reads and two clock reads.
 *
 * Each C method mirrors the Python method of the same name in
 * sql_sqlite._timed_cursor_class, which stays the reference implementation:
 * a call this code does not handle (keyword arguments, another argument count)
 * goes to it, and so does everything off the hot path (finishing a statement
 * outside a request, a failed fetch, logging). The module-level objects of
 * sql_sqlite these methods use are taken from its namespace once, by
 * configure() at its import (a dict lookup per name per call cost about
 * 1 500 instructions per statement).
 *
 * A ``TimedMethod`` is a method descriptor (Py_TPFLAGS_METHOD_DESCRIPTOR):
 * ``cursor.execute(...)`` calls it with the cursor as first argument, without
 * making a bound method.
 *
 * ``add_queries`` is Recorder._add_queries in C (recorder.py keeps the
 * reference): a request's statements into the interval's aggregates.
 *
 * The module keeps process-wide state (single-phase init): it is meant for
 * the main interpreter, as perfpilot is (numpy, which it imports, refuses
 * sub-interpreters).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>

#define KIND_EXECUTE 0
#define KIND_FETCHONE 1

/* indexes into an event: [sql, start, seconds, rows, failed, db] */
#define EV_SECONDS 2
#define EV_ROWS 3
#define EV_LEN 6 /* an event already its request's; longer ones are not */


static PyObject *s_state, *s_recorder, *s_blocks, *s_description, *s_rowcount,
    *s_query, *s_db_count, *s_queries, *s_open_query, *s_call_sites,
    *s_call_site, *s_append, *s_key, *s_message, *s_statements, *s_durations,
    *s_rows, *s_errors, *s_new_statement;

/* sql_sqlite's objects, set by configure(), all or none. No TimedMethod
   exists before that (TimedMethod_new checks g_configured), so the methods
   use them without NULL checks. */
static PyObject *g_active, *g_suppression, *g_is_suppressed, *g_collected,
    *g_finish_collected, *g_finish, *g_record, *g_current_request, *g_warn_once,
    *g_done, *g_fetch_failed, *g_SQLITE, *g_MAX_obj;
static long g_MAX;
static int g_configured = 0; /* configure() has taken every object */
static PyObject *g_zero, *g_one;

/* time.perf_counter(): CPython's own clock, so that C and Python readings
   can be subtracted (on macOS it is not CLOCK_MONOTONIC) */
static inline double
perf(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    (void)PyTime_PerfCounterRaw(&t);
    return PyTime_AsSecondsDouble(t);
#else
    return _PyTime_AsSecondsDouble(_PyTime_GetPerfCounter());
#endif
}

typedef struct {
    PyObject_HEAD
    PyObject *base;   /* the base class's method, e.g. sqlite3.Cursor.execute */
    PyObject *python; /* the Python implementation */
    PyObject *dict;
    PyObject *weakrefs;
    vectorcallfunc vectorcall;
    int kind;
    /* the class whose ``_perfpilot_state`` slot sits at ``offset`` in its
       instances (see TimedMethod.use_slot); NULL: attribute access */
    PyTypeObject *owner;
    Py_ssize_t offset;
} TimedMethod;

/* the cursor's pending statement (new reference; None when it has none) */
static PyObject *
get_state(TimedMethod *m, PyObject *cursor)
{
    PyObject *state;
    if (Py_TYPE(cursor) == m->owner) { /* the slot itself, as its descriptor reads it */
        state = *(PyObject **)((char *)cursor + m->offset);
        if (state == NULL) {
            Py_RETURN_NONE;
        }
        Py_INCREF(state);
        return state;
    }
    state = PyObject_GetAttr(cursor, s_state);
    if (state == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return state;
}

/* cursor._perfpilot_state = state */
static int
set_state(TimedMethod *m, PyObject *cursor, PyObject *state)
{
    if (Py_TYPE(cursor) == m->owner) {
        PyObject **slot = (PyObject **)((char *)cursor + m->offset);
        Py_INCREF(state);
        Py_XSETREF(*slot, state);
        return 0;
    }
    return PyObject_SetAttr(cursor, s_state, state);
}

/* Record a statement that ran: ``record()`` of sql_record, inlined as the
 * Python execute does it. Returns -1 with an exception set on failure. */
static int
record_statement(TimedMethod *m, PyObject *cursor, PyObject *recorder, PyObject *sql,
                 double start, double end)
{
    PyObject *desc, *st = NULL, *dur = NULL, *r, *ctx = NULL, *state = NULL;
    PyObject *sqlite_name = g_SQLITE, *call_sites;
    int rc = -1, contains;

    desc = PyObject_GetAttr(cursor, s_description);
    if (desc == NULL) {
        return -1;
    }
    st = PyFloat_FromDouble(start);
    dur = st == NULL ? NULL : PyFloat_FromDouble(end - start);
    if (st == NULL || dur == NULL) {
        goto done;
    }
    if (desc == Py_None) { /* no rows to fetch: done */
        PyObject *rows = PyObject_GetAttr(cursor, s_rowcount);
        int positive;
        if (rows == NULL) {
            goto done;
        }
        positive = PyObject_RichCompareBool(rows, g_zero, Py_GT);
        if (positive < 0) {
            Py_DECREF(rows);
            goto done;
        }
        {
            PyObject *args[] = {recorder, sql, st, dur, positive ? rows : g_zero,
                                Py_False, sqlite_name};
            r = PyObject_VectorcallMethod(s_query, args, 7, NULL);
        }
        Py_DECREF(rows);
        if (r == NULL) {
            goto done;
        }
        Py_DECREF(r);
    }
    else {
        if (PyContextVar_Get(g_current_request, Py_None, &ctx) < 0) {
            goto done;
        }
        if (ctx != Py_None) {
            PyObject *n_obj;
            long n, max = g_MAX;
            n_obj = PyObject_GetAttr(ctx, s_db_count);
            if (n_obj == NULL) {
                goto done;
            }
            n = PyLong_AsLong(n_obj);
            Py_DECREF(n_obj);
            if (n == -1 && PyErr_Occurred()) {
                goto done;
            }
            if (n >= 0 && n < max) {
                PyObject *count = PyLong_FromLong(n + 1);
                int failed;
                if (count == NULL) {
                    goto done;
                }
                failed = PyObject_SetAttr(ctx, s_db_count, count);
                Py_DECREF(count);
                if (failed < 0) {
                    goto done;
                }
                state = PyList_New(EV_LEN);
                if (state == NULL) {
                    goto done;
                }
                Py_INCREF(sql);
                PyList_SET_ITEM(state, 0, sql);
                Py_INCREF(st);
                PyList_SET_ITEM(state, 1, st);
                Py_INCREF(dur);
                PyList_SET_ITEM(state, EV_SECONDS, dur);
                Py_INCREF(g_zero);
                PyList_SET_ITEM(state, EV_ROWS, g_zero);
                Py_INCREF(Py_False);
                PyList_SET_ITEM(state, 4, Py_False);
                Py_INCREF(sqlite_name);
                PyList_SET_ITEM(state, 5, sqlite_name);
                if (n == 0) { /* the request's first event */
                    PyObject *queries = PyList_New(1);
                    if (queries == NULL) {
                        goto done;
                    }
                    Py_INCREF(state);
                    PyList_SET_ITEM(queries, 0, state);
                    failed = PyObject_SetAttr(ctx, s_queries, queries);
                    Py_DECREF(queries);
                }
                else {
                    PyObject *queries = PyObject_GetAttr(ctx, s_queries);
                    if (queries == NULL) {
                        goto done;
                    }
                    if (PyList_CheckExact(queries)) {
                        failed = PyList_Append(queries, state);
                    }
                    else {
                        r = PyObject_CallMethodOneArg(queries, s_append, state);
                        failed = r == NULL ? -1 : 0;
                        Py_XDECREF(r);
                    }
                    Py_DECREF(queries);
                }
                if (failed < 0) {
                    goto done;
                }
            }
        }
        if (state == NULL) { /* outside a request, or past its event bound */
            PyObject *args[] = {recorder, sql, st, dur, sqlite_name};
            state = PyObject_VectorcallMethod(s_open_query, args, 5, NULL);
            if (state == NULL) {
                goto done;
            }
        }
        if (set_state(m, cursor, state) < 0) {
            goto done;
        }
    }
    call_sites = PyObject_GetAttr(recorder, s_call_sites);
    if (call_sites == NULL) {
        goto done;
    }
    contains = PyDict_CheckExact(call_sites) ? PyDict_Contains(call_sites, sql)
                                             : PySequence_Contains(call_sites, sql);
    Py_DECREF(call_sites);
    if (contains < 0) {
        goto done;
    }
    if (!contains) { /* a method call only the first time */
        r = PyObject_CallMethodOneArg(recorder, s_call_site, sql);
        if (r == NULL) {
            goto done;
        }
        Py_DECREF(r);
    }
    rc = 0;
done:
    Py_DECREF(desc);
    Py_XDECREF(st);
    Py_XDECREF(dur);
    Py_XDECREF(ctx);
    Py_XDECREF(state);
    return rc;
}

/* ``warn_once("sql-record", ...)`` for the exception set now; clears it */
static void
warn_not_recorded(void)
{
    PyObject *type, *value, *tb, *r;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL) {
        PyObject *args[] = {s_key, s_message, value};
        r = PyObject_Vectorcall(g_warn_once, args, 3, NULL);
        Py_XDECREF(r);
    }
    PyErr_Clear();
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* an exception set aside by PyErr_Fetch */
typedef struct {
    PyObject *type, *value, *tb;
} Raised;

/* ``except BaseException: func(*args); raise``: call func while ``raised`` is
 * set aside, then raise it again. Should func raise, or an argument be NULL
 * (not made: MemoryError set), that exception propagates instead, as it would
 * in Python. Takes ``raised``'s references; returns NULL. */
static PyObject *
reraise_after(Raised *raised, PyObject *func, PyObject *const *args, size_t n)
{
    PyObject *r = NULL;
    size_t i = 0;
    while (i < n && args[i] != NULL) {
        i++;
    }
    if (i == n) {
        r = PyObject_Vectorcall(func, args, n, NULL);
    }
    if (r == NULL) {
        Py_XDECREF(raised->type);
        Py_XDECREF(raised->value);
        Py_XDECREF(raised->tb);
        return NULL;
    }
    Py_DECREF(r);
    PyErr_Restore(raised->type, raised->value, raised->tb);
    return NULL;
}

static PyObject *
execute_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                   PyObject *kwnames)
{
    TimedMethod *m = (TimedMethod *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *self, *sql, *state, *recorder, *result;
    double start, end;
    int untimed, truth;

    if (m->base == NULL || m->python == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "TimedMethod: cleared");
        return NULL;
    }
    if (kwnames != NULL || nargs < 2 || nargs > 3) {
        return PyObject_Vectorcall(m->python, args, nargsf, kwnames);
    }
    self = args[0];
    sql = args[1];
    /* _done(), inlined: the statement the cursor ran before is done */
    state = get_state(m, self);
    if (state == NULL) {
        return NULL;
    }
    if (state != Py_None) {
        Py_ssize_t len;
        if (set_state(m, self, Py_None) < 0) {
            Py_DECREF(state);
            return NULL;
        }
        len = PyObject_Length(state);
        if (len > EV_LEN) {
            PyObject *r = PyObject_CallOneArg(g_finish, state);
            if (r == NULL) {
                Py_DECREF(state);
                return NULL;
            }
            Py_DECREF(r);
        }
        else if (len < 0) {
            Py_DECREF(state);
            return NULL;
        }
    }
    Py_DECREF(state);

    recorder = PyObject_GetAttr(g_active, s_recorder);
    if (recorder == NULL) {
        return NULL;
    }
    untimed = recorder == Py_None;
    if (!untimed) {
        PyObject *blocks;
        blocks = PyObject_GetAttr(g_suppression, s_blocks);
        if (blocks == NULL) {
            goto error;
        }
        truth = PyObject_IsTrue(blocks);
        Py_DECREF(blocks);
        if (truth < 0) {
            goto error;
        }
        if (truth) {
            PyObject *r;
            r = PyObject_CallNoArgs(g_is_suppressed);
            if (r == NULL) {
                goto error;
            }
            untimed = PyObject_IsTrue(r);
            Py_DECREF(r);
            if (untimed < 0) {
                goto error;
            }
        }
    }
    if (untimed) {
        Py_DECREF(recorder);
        return PyObject_Vectorcall(m->base, args, nargs, NULL);
    }
    if ((truth = PyObject_IsTrue(g_collected)) < 0) {
        goto error;
    }
    if (truth) {
        PyObject *r;
        r = PyObject_CallNoArgs(g_finish_collected);
        if (r == NULL) {
            goto error;
        }
        Py_DECREF(r);
    }

    start = perf();
    /* the arguments as given: a subclass's execute may take no parameters
       differently from empty ones (Django's does) */
    result = PyObject_Vectorcall(m->base, args, nargs, NULL);
    end = perf();
    if (result == NULL) { /* record(recorder, sql, start, end, 0, True, SQLITE); raise */
        Raised raised;
        PyObject *st, *en;
        PyErr_Fetch(&raised.type, &raised.value, &raised.tb);
        st = PyFloat_FromDouble(start);
        en = st == NULL ? NULL : PyFloat_FromDouble(end);
        {
            PyObject *rargs[] = {recorder, sql, st, en, g_zero, Py_True, g_SQLITE};
            reraise_after(&raised, g_record, rargs, 7);
        }
        Py_XDECREF(st);
        Py_XDECREF(en);
        Py_DECREF(recorder);
        return NULL;
    }
    if (record_statement(m, self, recorder, sql, start, end) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            Py_DECREF(result);
            Py_DECREF(recorder);
            return NULL;
        }
        warn_not_recorded();
    }
    Py_DECREF(recorder);
    return result;

error:
    Py_DECREF(recorder);
    return NULL;
}

/* state[index] += delta, for a list event (as ``state[i] += x`` in Python) */
static int
add_to_item(PyObject *state, Py_ssize_t index, PyObject *delta)
{
    PyObject *item, *sum;
    if (PyList_CheckExact(state) && PyList_GET_SIZE(state) > index) {
        item = PyList_GET_ITEM(state, index);
        Py_INCREF(item); /* a generic += below may run Python code */
        if (PyFloat_CheckExact(item) && PyFloat_CheckExact(delta)) {
            sum = PyFloat_FromDouble(PyFloat_AS_DOUBLE(item) + PyFloat_AS_DOUBLE(delta));
        }
        else if (PyLong_CheckExact(item) && delta == g_one) {
            int overflow;
            long n = PyLong_AsLongAndOverflow(item, &overflow);
            sum = n == -1 && PyErr_Occurred()      ? NULL
                  : overflow == 0 && n < LONG_MAX ? PyLong_FromLong(n + 1)
                                                  : PyNumber_Add(item, delta);
        }
        else {
            sum = PyNumber_InPlaceAdd(item, delta);
        }
        Py_DECREF(item);
        if (sum == NULL) {
            return -1;
        }
        /* steals sum, drops the old item; fails if the list shrank meanwhile */
        return PyList_SetItem(state, index, sum);
    }
    {
        PyObject *key = PyLong_FromSsize_t(index);
        int rc;
        if (key == NULL) {
            return -1;
        }
        item = PyObject_GetItem(state, key);
        sum = item == NULL ? NULL : PyNumber_InPlaceAdd(item, delta);
        Py_XDECREF(item);
        rc = sum == NULL ? -1 : PyObject_SetItem(state, key, sum);
        Py_XDECREF(sum);
        Py_DECREF(key);
        return rc;
    }
}

static PyObject *
fetchone_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                    PyObject *kwnames)
{
    TimedMethod *m = (TimedMethod *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *self, *state, *row, *delta = NULL, *r;
    double start, end;

    if (m->base == NULL || m->python == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "TimedMethod: cleared");
        return NULL;
    }
    if (kwnames != NULL || nargs != 1) {
        return PyObject_Vectorcall(m->python, args, nargsf, kwnames);
    }
    self = args[0];
    state = get_state(m, self);
    if (state == NULL) {
        return NULL;
    }
    if (state == Py_None) {
        Py_DECREF(state);
        return PyObject_Vectorcall(m->base, args, 1, NULL);
    }
    start = perf();
    row = PyObject_Vectorcall(m->base, args, 1, NULL);
    end = perf();
    if (row == NULL) { /* _fetch_failed(self, state, start); raise */
        Raised raised;
        PyObject *st;
        PyErr_Fetch(&raised.type, &raised.value, &raised.tb);
        st = PyFloat_FromDouble(start);
        {
            PyObject *fargs[] = {self, state, st};
            reraise_after(&raised, g_fetch_failed, fargs, 3);
        }
        Py_XDECREF(st);
        Py_DECREF(state);
        return NULL;
    }
    delta = PyFloat_FromDouble(end - start);
    if (delta == NULL || add_to_item(state, EV_SECONDS, delta) < 0) {
        goto error;
    }
    Py_CLEAR(delta);
    if (row != Py_None) {
        if (add_to_item(state, EV_ROWS, g_one) < 0) {
            goto error;
        }
    }
    else {
        r = PyObject_CallOneArg(g_done, self);
        if (r == NULL) {
            goto error;
        }
        Py_DECREF(r);
    }
    Py_DECREF(state);
    return row;

error:
    Py_XDECREF(delta);
    Py_DECREF(state);
    Py_DECREF(row);
    return NULL;
}

static PyObject *
TimedMethod_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    int kind;
    PyObject *base, *python;
    TimedMethod *m;
    static char *names[] = {"kind", "base", "python", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iOO:TimedMethod", names, &kind,
                                     &base, &python)) {
        return NULL;
    }
    if (!g_configured) {
        PyErr_SetString(PyExc_RuntimeError, "TimedMethod: configure() has not run");
        return NULL;
    }
    if (kind != KIND_EXECUTE && kind != KIND_FETCHONE) {
        PyErr_SetString(PyExc_ValueError, "TimedMethod: unknown kind");
        return NULL;
    }
    if (!PyCallable_Check(base) || !PyCallable_Check(python)) {
        PyErr_SetString(PyExc_TypeError, "TimedMethod: base and python must be callable");
        return NULL;
    }
    m = (TimedMethod *)type->tp_alloc(type, 0);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(base);
    m->base = base;
    Py_INCREF(python);
    m->python = python;
    m->dict = NULL;
    m->weakrefs = NULL;
    m->kind = kind;
    m->owner = NULL;
    m->offset = 0;
    m->vectorcall = kind == KIND_EXECUTE ? execute_vectorcall : fetchone_vectorcall;
    return (PyObject *)m;
}

static int
TimedMethod_traverse(TimedMethod *m, visitproc visit, void *arg)
{
    Py_VISIT(m->base);
    Py_VISIT(m->python);
    Py_VISIT(m->dict);
    Py_VISIT(m->owner);
    return 0;
}

static int
TimedMethod_clear(TimedMethod *m)
{
    Py_CLEAR(m->base);
    Py_CLEAR(m->python);
    Py_CLEAR(m->dict);
    Py_CLEAR(m->owner);
    return 0;
}

static void
TimedMethod_dealloc(TimedMethod *m)
{
    PyObject_GC_UnTrack(m);
    if (m->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)m);
    }
    TimedMethod_clear(m);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static PyObject *
TimedMethod_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

/* Read and write the pending statement of ``cls``'s instances straight from
 * their ``_perfpilot_state`` slot (a member descriptor of ``cls`` itself, as
 * __slots__ makes it), not through attribute access. */
static PyObject *
TimedMethod_use_slot(TimedMethod *m, PyObject *cls)
{
    PyObject *descr;
    PyMemberDef *member;
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "use_slot() takes a class");
        return NULL;
    }
    descr = PyDict_GetItemWithError(((PyTypeObject *)cls)->tp_dict, s_state);
    if (descr == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "use_slot(): the class has no _perfpilot_state slot");
        }
        return NULL;
    }
    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type) ||
        ((PyDescrObject *)descr)->d_type != (PyTypeObject *)cls) {
        PyErr_SetString(PyExc_TypeError, "use_slot(): _perfpilot_state is not a slot of the class");
        return NULL;
    }
    member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX || (member->flags & READONLY) || member->offset <= 0 ||
        member->offset + (Py_ssize_t)sizeof(PyObject *) > ((PyTypeObject *)cls)->tp_basicsize) {
        PyErr_SetString(PyExc_TypeError, "use_slot(): _perfpilot_state is not a plain slot");
        return NULL;
    }
    /* the slot is read and written the way the descriptor does it; a class
       with attribute hooks of its own must see every access */
    if (((PyTypeObject *)cls)->tp_getattro != PyObject_GenericGetAttr ||
        ((PyTypeObject *)cls)->tp_setattro != PyObject_GenericSetAttr) {
        PyErr_SetString(PyExc_TypeError, "use_slot(): the class customizes attribute access");
        return NULL;
    }
    Py_INCREF(cls);
    Py_XSETREF(m->owner, (PyTypeObject *)cls);
    m->offset = member->offset;
    Py_RETURN_NONE;
}

static PyMethodDef TimedMethod_methods[] = {
    {"use_slot", (PyCFunction)TimedMethod_use_slot, METH_O,
     "Read the pending statement of the class's instances from its slot."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef TimedMethod_members[] = {
    {"__perfpilot_python__", T_OBJECT, offsetof(TimedMethod, python), READONLY,
     "The Python implementation this method mirrors."},
    {NULL},
};

static PyGetSetDef TimedMethod_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL},
};

static PyTypeObject TimedMethodType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "perfpilot.instrument._speedups.TimedMethod",
    .tp_doc = "A timed sqlite3 cursor method (execute or fetchone) in C.",
    .tp_basicsize = sizeof(TimedMethod),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_METHOD_DESCRIPTOR |
                Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = TimedMethod_new,
    .tp_traverse = (traverseproc)TimedMethod_traverse,
    .tp_clear = (inquiry)TimedMethod_clear,
    .tp_dealloc = (destructor)TimedMethod_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(TimedMethod, vectorcall),
    .tp_descr_get = TimedMethod_get,
    .tp_dictoffset = offsetof(TimedMethod, dict),
    .tp_weaklistoffset = offsetof(TimedMethod, weakrefs),
    .tp_members = TimedMethod_members,
    .tp_methods = TimedMethod_methods,
    .tp_getset = TimedMethod_getset,
};

/* Take sql_sqlite's objects from its namespace, once: a later call (a
 * reload of the module) changes nothing, so that no object a method is
 * using can be freed under it. */
static PyObject *
configure(PyObject *module, PyObject *namespace)
{
    static const char *names[] = {
        "active", "suppression", "is_suppressed", "_collected", "_finish_collected",
        "_finish", "record", "current_request", "warn_once", "_done", "_fetch_failed",
        "SQLITE", "MAX_EVENTS_PER_REQUEST",
    };
    PyObject **slots[] = {
        &g_active, &g_suppression, &g_is_suppressed, &g_collected, &g_finish_collected,
        &g_finish, &g_record, &g_current_request, &g_warn_once, &g_done, &g_fetch_failed,
        &g_SQLITE, &g_MAX_obj,
    };
    enum { N = sizeof(names) / sizeof(names[0]) };
    PyObject *taken[N];
    long max;
    int i;

    if (!PyDict_Check(namespace)) {
        PyErr_SetString(PyExc_TypeError, "configure() takes the module's namespace dict");
        return NULL;
    }
    if (g_configured) {
        Py_RETURN_NONE;
    }
    for (i = 0; i < N; i++) {
        taken[i] = PyDict_GetItemString(namespace, names[i]);
        if (taken[i] == NULL) {
            PyErr_Format(PyExc_KeyError, "configure(): the namespace has no %s", names[i]);
            return NULL;
        }
    }
    max = PyLong_AsLong(taken[N - 1]);
    if (max == -1 && PyErr_Occurred()) {
        return NULL;
    }
    for (i = 0; i < N; i++) {
        Py_INCREF(taken[i]);
        *slots[i] = taken[i];
    }
    g_MAX = max;
    g_configured = 1;
    Py_RETURN_NONE;
}

/* agg.<name> += value */
static int
add_to_attr(PyObject *agg, PyObject *name, PyObject *value)
{
    PyObject *old = PyObject_GetAttr(agg, name), *sum;
    int rc;
    if (old == NULL) {
        return -1;
    }
    sum = PyNumber_InPlaceAdd(old, value);
    Py_DECREF(old);
    if (sum == NULL) {
        return -1;
    }
    rc = PyObject_SetAttr(agg, name, sum);
    Py_DECREF(sum);
    return rc;
}

/* add_queries(recorder, interval, queries, route) -> float
 *
 * Recorder._add_queries in C (see recorder.py, which keeps the reference):
 * each event ``(sql, start, seconds, rows, failed, db)`` of ``queries`` goes
 * to the interval's aggregate of (route, db) and sql; returns the seconds. */
static PyObject *
add_queries(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *recorder, *interval, *route, *tables, *seq;
    PyObject *table = NULL, *table_db = NULL;
    Py_ssize_t i;
    double total = 0.0;

    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "add_queries() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    recorder = args[0];
    interval = args[1];
    route = args[3];
    tables = PyObject_GetAttr(interval, s_statements);
    if (tables == NULL) {
        return NULL;
    }
    if (!PyDict_Check(tables)) {
        PyErr_SetString(PyExc_TypeError, "add_queries(): interval.statements is not a dict");
        Py_DECREF(tables);
        return NULL;
    }
    seq = PySequence_Fast(args[2], "add_queries(): queries must be iterable");
    if (seq == NULL) {
        Py_DECREF(tables);
        return NULL;
    }
    /* the size read each time: callbacks run Python code */
    for (i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *event = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *item[EV_LEN], *agg = NULL, *durations;
        double seconds;
        int k, positive, truth, rc = -1;

        if (!(PyList_Check(event) || PyTuple_Check(event)) || Py_SIZE(event) != EV_LEN) {
            PyErr_SetString(PyExc_ValueError, "add_queries(): an event is not 6 items");
            goto error;
        }
        /* own references: a fetch in another thread may replace an open
           event's items while a callback runs */
        for (k = 0; k < EV_LEN; k++) {
            item[k] = PySequence_Fast_ITEMS(event)[k];
            Py_INCREF(item[k]);
        }
        seconds = PyFloat_AsDouble(item[EV_SECONDS]);
        if (seconds == -1.0 && PyErr_Occurred()) {
            goto next;
        }
        total += seconds;
        if (item[5] != table_db) { /* a request's statements are mostly of one db */
            PyObject *key = PyTuple_Pack(2, route, item[5]), *fresh, *found = NULL;
            if (key != NULL && (fresh = PyDict_New()) != NULL) {
                found = PyDict_SetDefault(tables, key, fresh);
                Py_DECREF(fresh);
            }
            Py_XDECREF(key);
            if (found == NULL) {
                goto next;
            }
            Py_INCREF(found);
            Py_XSETREF(table, found);
            Py_INCREF(item[5]);
            Py_XSETREF(table_db, item[5]); /* compared by identity, as in Python */
        }
        agg = PyDict_GetItemWithError(table, item[0]);
        if (agg != NULL) {
            Py_INCREF(agg);
        }
        else if (!PyErr_Occurred()) {
            PyObject *cargs[] = {recorder, interval, table, item[0]};
            agg = PyObject_VectorcallMethod(s_new_statement, cargs, 4, NULL);
        }
        if (agg == NULL) {
            goto next;
        }
        durations = PyObject_GetAttr(agg, s_durations);
        if (durations != NULL) {
            if (PyList_CheckExact(durations)) {
                rc = PyList_Append(durations, item[EV_SECONDS]);
            }
            else {
                PyObject *r = PyObject_CallMethodOneArg(durations, s_append, item[EV_SECONDS]);
                rc = r == NULL ? -1 : 0;
                Py_XDECREF(r);
            }
            Py_DECREF(durations);
        }
        if (rc == 0) {
            positive = PyObject_RichCompareBool(item[EV_ROWS], g_zero, Py_GT);
            rc = positive < 0 ? -1 : positive ? add_to_attr(agg, s_rows, item[EV_ROWS]) : 0;
        }
        if (rc == 0) {
            truth = PyObject_IsTrue(item[4]);
            rc = truth < 0 ? -1 : truth ? add_to_attr(agg, s_errors, g_one) : 0;
        }
    next:
        Py_XDECREF(agg);
        for (k = 0; k < EV_LEN; k++) {
            Py_DECREF(item[k]);
        }
        if (rc < 0) {
            goto error;
        }
    }
    Py_XDECREF(table);
    Py_XDECREF(table_db);
    Py_DECREF(seq);
    Py_DECREF(tables);
    return PyFloat_FromDouble(total);

error:
    Py_XDECREF(table);
    Py_XDECREF(table_db);
    Py_DECREF(seq);
    Py_DECREF(tables);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"add_queries", (PyCFunction)(void (*)(void))add_queries, METH_FASTCALL,
     "add_queries(recorder, interval, queries, route) -> float: Recorder._add_queries in C."},
    {"configure", configure, METH_O,
     "Take sql_sqlite's namespace, where the methods look up its names."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "perfpilot.instrument._speedups",
    .m_doc = "sqlite3 cursor methods timed in C (see sql_sqlite).",
    .m_size = -1,
    .m_methods = module_methods,
};

#define INTERN(var, text)                                                      \
    do {                                                                       \
        if ((var = PyUnicode_InternFromString(text)) == NULL) {                \
            return NULL;                                                       \
        }                                                                      \
    } while (0)

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *module;
    INTERN(s_state, "_perfpilot_state");
    INTERN(s_recorder, "recorder");
    INTERN(s_blocks, "blocks");
    INTERN(s_description, "description");
    INTERN(s_rowcount, "rowcount");
    INTERN(s_query, "query");
    INTERN(s_db_count, "db_count");
    INTERN(s_queries, "queries");
    INTERN(s_open_query, "open_query");
    INTERN(s_call_sites, "call_sites");
    INTERN(s_call_site, "call_site");
    INTERN(s_append, "append");
    INTERN(s_key, "sql-record");
    INTERN(s_statements, "statements");
    INTERN(s_durations, "durations");
    INTERN(s_rows, "rows");
    INTERN(s_errors, "errors");
    INTERN(s_new_statement, "_new_statement");
    INTERN(s_message, "perfpilot: an SQL statement was not recorded: %r");
    if ((g_zero = PyLong_FromLong(0)) == NULL ||
        (g_one = PyLong_FromLong(1)) == NULL) {
        return NULL;
    }
    module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddType(module, &TimedMethodType) < 0 ||
        PyModule_AddIntConstant(module, "EXECUTE", KIND_EXECUTE) < 0 ||
        PyModule_AddIntConstant(module, "FETCHONE", KIND_FETCHONE) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
