/*
 * hush_cell.h — the hush recurrent-cell plugin ABI, version 1.0.0.
 *
 * Hand-kept in sync with the Rust crate `hush-cell-abi`
 * (cell-plugins/abi/src/lib.rs), which is the normative definition and
 * documents every field. The test cell-plugins/abi/tests/header_sync.rs
 * compiles a C file against this header that asserts every size, offset
 * and constant against the Rust values.
 *
 * Thread tags:
 *   [main-thread]  host control thread, never concurrent with another call
 *                  on the same instance.
 *   [audio-thread] the processing thread; no allocation, locks or blocking;
 *                  calls on one instance never overlap.
 *   [thread-safe]  any thread, except concurrently with activate/destroy.
 *
 * A plugin library exports one data symbol:
 *   HUSH_CELL_EXPORT const HushCellEntry hush_cell_entry;
 */
#ifndef HUSH_CELL_H
#define HUSH_CELL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HUSH_CELL_ABI_MAJOR 1u
#define HUSH_CELL_ABI_MINOR 0u
#define HUSH_CELL_ABI_PATCH 0u

#define HUSH_CELL_ENTRY_SYMBOL "hush_cell_entry"
#define HUSH_CELL_FACTORY_ID "hush.cell-factory/1"
#define HUSH_EXT_LOW_RANK "hush.low-rank/1"

#define HUSH_TENSOR_MAX_DIMS 4
#define HUSH_TENSOR_FLAG_LOW_RANK 1u
#define HUSH_VIA_NONE (-1)

/* Status codes (closed set). */
typedef int32_t HushStatus;
#define HUSH_STATUS_OK 0
#define HUSH_STATUS_INVALID_ARGUMENT 1
#define HUSH_STATUS_INVALID_STATE 2
#define HUSH_STATUS_REJECTED 3
#define HUSH_STATUS_UNSUPPORTED 4
#define HUSH_STATUS_NON_FINITE 5
#define HUSH_STATUS_PANICKED 6
#define HUSH_STATUS_POISONED 7
#define HUSH_STATUS_INTERNAL 8

/* Log levels. */
typedef int32_t HushLogLevel;
#define HUSH_LOG_ERROR 0
#define HUSH_LOG_WARNING 1
#define HUSH_LOG_INFO 2
#define HUSH_LOG_DEBUG 3

/* Error-propagation forms (hush.low-rank/1 error_form). */
#define HUSH_ERROR_FORM_PER_UNIT 1u
#define HUSH_ERROR_FORM_MEAN_JACOBIAN 2u

typedef struct HushVersion {
    uint32_t major;
    uint32_t minor;
    uint32_t patch;
} HushVersion;

typedef struct HushHost HushHost;
struct HushHost {
    HushVersion abi;
    void *host_data;
    const char *name;
    const char *version;
    /* [thread-safe], must not block */
    void (*log)(const HushHost *host, HushLogLevel level, const char *message);
};

typedef struct HushCellEntry {
    HushVersion abi;
    /* [main-thread] reference-counted; false = failure */
    bool (*init)(const HushHost *host);
    /* [main-thread] */
    void (*deinit)(void);
    /* [thread-safe] */
    const void *(*get_factory)(const char *factory_id);
} HushCellEntry;

/* extent = input * m + state * n + constant */
typedef struct HushDim {
    uint32_t input;
    uint32_t state;
    uint32_t constant;
} HushDim;

typedef struct HushTensorSpec {
    const char *name;
    const char *description;
    uint32_t flags;
    uint32_t ndim;
    HushDim dims[HUSH_TENSOR_MAX_DIMS];
} HushTensorSpec;

typedef struct HushCellDescriptor {
    HushVersion abi;
    const char *id;
    const char *name;
    const char *version;
    const char *description;
    uint32_t tensor_count;
    const HushTensorSpec *tensors;
} HushCellDescriptor;

typedef struct HushCellSizes {
    uint32_t input;
    uint32_t state;
} HushCellSizes;

typedef struct HushTensor {
    const char *name;
    uint32_t ndim;
    uint32_t shape[HUSH_TENSOR_MAX_DIMS];
    const float *data;
    size_t len;
} HushTensor;

typedef struct HushCellInstance HushCellInstance;

typedef struct HushCellFactory HushCellFactory;
struct HushCellFactory {
    /* [thread-safe] */
    uint32_t (*get_cell_count)(const HushCellFactory *factory);
    /* [thread-safe] */
    const HushCellDescriptor *(*get_cell_descriptor)(const HushCellFactory *factory,
                                                     uint32_t index);
    /* [main-thread] */
    HushStatus (*create_cell)(const HushCellFactory *factory, const HushHost *host,
                              const char *cell_id, const HushCellSizes *sizes,
                              const HushTensor *tensors, size_t tensor_count,
                              const HushCellInstance **out_cell);
};

struct HushCellInstance {
    const HushCellDescriptor *desc;
    void *cell_data;
    /* [main-thread] may allocate */
    HushStatus (*activate)(const HushCellInstance *cell, uint32_t max_rank);
    /* [audio-thread] */
    HushStatus (*reset)(const HushCellInstance *cell);
    /* [audio-thread] no allocation, no locks */
    HushStatus (*step)(const HushCellInstance *cell, const float *x, size_t x_len,
                       const float *h_in, float *h_out, size_t state_len);
    /* [thread-safe] */
    const void *(*get_extension)(const HushCellInstance *cell, const char *id);
    /* [main-thread] */
    void (*destroy)(const HushCellInstance *cell);
};

typedef struct HushMatrixInfo {
    const char *name;
    const char *input;
    uint32_t rows;
    uint32_t cols;
    int32_t via_matrix;
} HushMatrixInfo;

typedef struct HushMacs {
    uint64_t total;
    uint64_t recurrent;
} HushMacs;

typedef struct HushProbeMatrix {
    float *projections;
    float *gate_derivatives;
    float *input_derivatives;
} HushProbeMatrix;

typedef struct HushProbe {
    size_t state_len;
    uint32_t matrix_count;
    const HushProbeMatrix *matrices;
    float *retention;
} HushProbe;

/* Extension HUSH_EXT_LOW_RANK ("hush.low-rank/1"). */
typedef struct HushLowRankExt {
    /* [thread-safe] */
    uint32_t (*matrix_count)(const HushCellInstance *cell);
    /* [thread-safe] */
    HushStatus (*matrix_info)(const HushCellInstance *cell, uint32_t index, HushMatrixInfo *out);
    /* [thread-safe] */
    uint32_t (*error_form)(const HushCellInstance *cell);
    /* [thread-safe] */
    HushStatus (*singular_values)(const HushCellInstance *cell, uint32_t index, float *out,
                                  size_t len);
    /* [thread-safe] */
    HushStatus (*factors)(const HushCellInstance *cell, uint32_t index, float *p_out,
                          float *qt_out, size_t len);
    /* [audio-thread] */
    HushStatus (*set_rank)(const HushCellInstance *cell, uint32_t index, uint32_t rank);
    /* [audio-thread] */
    uint32_t (*get_rank)(const HushCellInstance *cell, uint32_t index);
    /* [audio-thread] */
    HushStatus (*macs)(const HushCellInstance *cell, HushMacs *out);
    /* [thread-safe] */
    HushStatus (*macs_for_ranks)(const HushCellInstance *cell, const uint32_t *ranks,
                                 uint32_t count, HushMacs *out);
    /* [audio-thread] */
    HushStatus (*probe)(const HushCellInstance *cell, const HushProbe *out);
    /* [audio-thread] */
    HushStatus (*jacobian)(const HushCellInstance *cell, float *out, size_t len);
} HushLowRankExt;

#ifdef __cplusplus
}
#endif

#endif /* HUSH_CELL_H */
