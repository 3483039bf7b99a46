/*
 * The block delta's weak rolling hash (see src/core/delta.ts, whose loops
 * these replace when built): h = sum(T[w[i]] * P^(b-1-i)) mod 2^32 over a
 * window w of b bytes, with the table T passed in by the caller, so that
 * both implementations use the same one.
 *
 * weakHash(data, from, block, table): the hash of data[from, from + block).
 * weakHashes(data, block, table, out): out[i] = the hash of block i of data
 *   from its start, and, when out has one more slot, of the last `block`
 *   bytes.
 * weakScan(data, from, block, outWeight, table, filter, state): from the
 *   window at `from`, whose hash is state[0], rolls forward one byte at a
 *   time; returns the first window start whose hash has its bit set in
 *   `filter` (indexed by the hash's top 16 bits), with that hash in
 *   state[0], or -1 when the window reaches the end of data without one.
 */
#include <node_api.h>
#include <stdint.h>

#define P 0x01000193u

static int typed(napi_env env, napi_value v, napi_typedarray_type want, void **ptr, size_t *len) {
  napi_typedarray_type type;
  return napi_get_typedarray_info(env, v, &type, len, ptr, NULL, NULL) == napi_ok && type == want;
}

/* Four bytes a step: h * P^4 plus terms that do not depend on h, so the
 * multiplications overlap; the same sum mod 2^32 as one byte a step. */
static uint32_t window_hash(const uint8_t *d, size_t from, size_t block, const int32_t *t) {
  const uint32_t p2 = P * P, p3 = p2 * P, p4 = p3 * P;
  uint32_t h = 0;
  size_t i = from;
  const size_t end = from + block;
  for (; i + 4 <= end; i += 4) {
    h = h * p4 + (uint32_t)t[d[i]] * p3 + (uint32_t)t[d[i + 1]] * p2 + (uint32_t)t[d[i + 2]] * P +
        (uint32_t)t[d[i + 3]];
  }
  for (; i < end; i++) h = h * P + (uint32_t)t[d[i]];
  return h;
}

static napi_value weak_hash(napi_env env, napi_callback_info cb) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, cb, &argc, argv, NULL, NULL);
  void *data, *table;
  size_t length, table_length;
  int64_t from, block;
  if (argc < 4 || !typed(env, argv[0], napi_uint8_array, &data, &length) ||
      napi_get_value_int64(env, argv[1], &from) != napi_ok ||
      napi_get_value_int64(env, argv[2], &block) != napi_ok ||
      !typed(env, argv[3], napi_int32_array, &table, &table_length) || table_length != 256 ||
      block <= 0 || from < 0 || from + block > (int64_t)length) {
    napi_throw_type_error(env, NULL, "weakHash(data, from, block, table): bad arguments");
    return NULL;
  }
  napi_value result;
  napi_create_int32(env, (int32_t)window_hash(data, (size_t)from, (size_t)block, table), &result);
  return result;
}

static napi_value weak_hashes(napi_env env, napi_callback_info cb) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, cb, &argc, argv, NULL, NULL);
  void *data, *table, *out;
  size_t length, table_length, out_length;
  int64_t block;
  if (argc < 4 || !typed(env, argv[0], napi_uint8_array, &data, &length) ||
      napi_get_value_int64(env, argv[1], &block) != napi_ok ||
      !typed(env, argv[2], napi_int32_array, &table, &table_length) ||
      !typed(env, argv[3], napi_uint32_array, &out, &out_length) || table_length != 256 ||
      block <= 0 || (size_t)block > length) {
    napi_throw_type_error(env, NULL, "weakHashes(data, block, table, out): bad arguments");
    return NULL;
  }
  const size_t b = (size_t)block, full = length / b;
  if (out_length < full || out_length > full + 1) {
    napi_throw_range_error(env, NULL, "weakHashes: out has the wrong length");
    return NULL;
  }
  uint32_t *o = out;
  for (size_t i = 0; i < full; i++) o[i] = window_hash(data, i * b, b, table);
  if (out_length > full) o[full] = window_hash(data, length - b, b, table);
  return NULL;
}

static napi_value weak_scan(napi_env env, napi_callback_info cb) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, cb, &argc, argv, NULL, NULL);
  void *data, *table, *filter, *state;
  size_t length, table_length, filter_length, state_length;
  int64_t from, block;
  int32_t out_weight;
  if (argc < 7 || !typed(env, argv[0], napi_uint8_array, &data, &length) ||
      napi_get_value_int64(env, argv[1], &from) != napi_ok ||
      napi_get_value_int64(env, argv[2], &block) != napi_ok ||
      napi_get_value_int32(env, argv[3], &out_weight) != napi_ok ||
      !typed(env, argv[4], napi_int32_array, &table, &table_length) ||
      !typed(env, argv[5], napi_uint8_array, &filter, &filter_length) ||
      !typed(env, argv[6], napi_int32_array, &state, &state_length) || table_length != 256 ||
      filter_length != 8192 || state_length < 1 || block <= 0 || from < 0 ||
      from + block > (int64_t)length) {
    napi_throw_type_error(env, NULL, "weakScan: bad arguments");
    return NULL;
  }
  const uint8_t *d = data, *f = filter;
  const int32_t *t = table;
  const uint32_t w = (uint32_t)out_weight;
  const size_t b = (size_t)block, last = length - b;
  uint32_t h = (uint32_t)((int32_t *)state)[0];
  size_t i = (size_t)from;
  napi_value result;
  for (;;) {
    if (f[h >> 19] & (1u << ((h >> 16) & 7))) {
      ((int32_t *)state)[0] = (int32_t)h;
      napi_create_double(env, (double)i, &result);
      return result;
    }
    if (i >= last) break;
    h = (h - (uint32_t)t[d[i]] * w) * P + (uint32_t)t[d[i + b]];
    i++;
  }
  ((int32_t *)state)[0] = (int32_t)h;
  napi_create_double(env, -1, &result);
  return result;
}

napi_value weak_hash_init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "weakHash", NAPI_AUTO_LENGTH, weak_hash, NULL, &fn);
  napi_set_named_property(env, exports, "weakHash", fn);
  napi_create_function(env, "weakHashes", NAPI_AUTO_LENGTH, weak_hashes, NULL, &fn);
  napi_set_named_property(env, exports, "weakHashes", fn);
  napi_create_function(env, "weakScan", NAPI_AUTO_LENGTH, weak_scan, NULL, &fn);
  napi_set_named_property(env, exports, "weakScan", fn);
  return exports;
}
