/*
 * gearScan(data, from, to, mask, state): FastCDC's inner loop (see
 * src/core/fastcdc-core.js, whose scan() it replaces when built): hashes
 * data[from..to) with the gear hash h = (h << 1) + gear[byte], starting
 * from state[0]. Returns the index just past the first byte where
 * (h & mask) == 0, or, with no match, minus `to` after storing h in
 * state[0]. The gear table is the same SplitMix64 sequence as the
 * JavaScript one; the test vectors of fastcdc.test.ts run on both.
 */
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>

static int32_t gear[256];
/* gear[b] << 1: two bytes per step, h2 = (h << 2) + gear2[b0] + gear[b1]. */
static uint32_t gear2[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static void make_gear(void) {
  uint64_t state = 0x746f6e676275ULL; /* "tongbu" */
  for (int i = 0; i < 256; i++) {
    state += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    gear[i] = (int32_t)(uint32_t)(z >> 32);
    gear2[i] = (uint32_t)gear[i] << 1;
  }
}

static napi_value gear_scan(napi_env env, napi_callback_info cb) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, cb, &argc, argv, NULL, NULL);
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "gearScan(data, from, to, mask, state)");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length, state_length;
  void *data_ptr, *state_ptr;
  int64_t from, to;
  int32_t mask;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data_ptr, NULL, NULL) != napi_ok ||
      type != napi_uint8_array ||
      napi_get_value_int64(env, argv[1], &from) != napi_ok ||
      napi_get_value_int64(env, argv[2], &to) != napi_ok ||
      napi_get_value_int32(env, argv[3], &mask) != napi_ok ||
      napi_get_typedarray_info(env, argv[4], &type, &state_length, &state_ptr, NULL, NULL) !=
          napi_ok ||
      type != napi_int32_array || state_length < 1 || from < 0 || to > (int64_t)length ||
      from >= to) {
    napi_throw_type_error(env, NULL, "gearScan: bad arguments");
    return NULL;
  }
  const uint8_t *data = data_ptr;
  int32_t *state = state_ptr;
  uint32_t h = (uint32_t)state[0];
  const uint32_t m = (uint32_t)mask;
  napi_value result;
  /* Two bytes a step: the hash after the second byte depends on h through
   * one shift and add, not two in a row; the one after the first byte is
   * computed beside it for its own check. Same hashes, same cut points. */
  int64_t i = from;
  for (; i + 1 < to; i += 2) {
    const uint32_t h1 = (h << 1) + (uint32_t)gear[data[i]];
    const uint32_t h2 = (h << 2) + (gear2[data[i]] + (uint32_t)gear[data[i + 1]]);
    if ((h1 & m) == 0) {
      napi_create_double(env, (double)(i + 1), &result);
      return result;
    }
    if ((h2 & m) == 0) {
      napi_create_double(env, (double)(i + 2), &result);
      return result;
    }
    h = h2;
  }
  if (i < to) {
    h = (h << 1) + (uint32_t)gear[data[i]];
    if ((h & m) == 0) {
      napi_create_double(env, (double)(i + 1), &result);
      return result;
    }
  }
  state[0] = (int32_t)h;
  napi_create_double(env, -(double)to, &result);
  return result;
}

napi_value gear_scan_init(napi_env env, napi_value exports) {
  pthread_once(&gear_once, make_gear); /* the module loads once per thread */
  napi_value fn;
  napi_create_function(env, "gearScan", NAPI_AUTO_LENGTH, gear_scan, NULL, &fn);
  napi_set_named_property(env, exports, "gearScan", fn);
  return exports;
}
