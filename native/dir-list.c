/*
 * listDir(path): the entries of one directory with what a sync compares,
 * read in one call: names in directory order and, per name, st_mode, size
 * and mtime in milliseconds, from fstatat on the open directory (a short
 * lookup, no Stats object per entry).
 *
 * Returns { names: string[], info: Float64Array } with three numbers per
 * name: mode (or -errno when that entry could not be stat'ed), size,
 * mtimeMs. Returns null when a name is not valid UTF-8: the caller lists
 * that directory by bytes instead. Entries gone between readdir and
 * fstatat are left out. Throws an Error with a Node-style `code` when the
 * directory cannot be opened or read.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  char *name;
  size_t len;
  double mode;
  double size;
  double mtime_ms;
} entry_t;

static int valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t extra;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { extra = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { extra = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { extra = 3; cp = c & 0x07; }
    else return 0;
    for (size_t k = 1; k <= extra; k++) {
      if (i + k >= n || (s[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (extra == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
    if (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    i += extra + 1;
  }
  return 1;
}

static void free_entries(entry_t *entries, size_t count) {
  for (size_t i = 0; i < count; i++) free(entries[i].name);
  free(entries);
}

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  const char *code_name = strerrorname_np(err);
  char message[4096 + 128];
  snprintf(message, sizeof message, "%s: %s, %s '%s'", code_name ? code_name : "EIO",
           strerror(err), syscall, path);
  napi_value code, msg, error, errno_value;
  napi_create_string_utf8(env, code_name ? code_name : "EIO", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_throw(env, error);
  return NULL;
}

static napi_value list_dir(napi_env env, napi_callback_info cb) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, cb, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "listDir(path): path missing");
    return NULL;
  }
  char path[4096];
  size_t path_len;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "listDir(path): path must be a string");
    return NULL;
  }
  if (path_len >= sizeof path - 1) return throw_errno(env, ENAMETOOLONG, "scandir", path);

  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "scandir", path);
  DIR *dir = fdopendir(fd);
  if (dir == NULL) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "scandir", path);
  }

  size_t count = 0, capacity = 64;
  entry_t *entries = malloc(capacity * sizeof *entries);
  int bad_name = 0, failed = 0;
  for (;;) {
    errno = 0;
    struct dirent *d = readdir(dir);
    if (d == NULL) {
      failed = errno;
      break;
    }
    const char *name = d->d_name;
    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
    size_t len = strlen(name);
    if (!valid_utf8((const unsigned char *)name, len)) {
      bad_name = 1;
      break;
    }
    struct stat st;
    double mode, size = 0, mtime_ms = 0;
    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      mode = (double)st.st_mode;
      size = (double)st.st_size;
      /* The same double arithmetic as Node's Stats#mtimeMs. */
      mtime_ms = (double)st.st_mtim.tv_sec * 1e3 + (double)st.st_mtim.tv_nsec / 1e6;
    } else if (errno == ENOENT) {
      continue; /* gone since readdir */
    } else {
      mode = -(double)errno;
    }
    if (count == capacity) {
      capacity *= 2;
      entries = realloc(entries, capacity * sizeof *entries);
    }
    entries[count].name = strndup(name, len);
    entries[count].len = len;
    entries[count].mode = mode;
    entries[count].size = size;
    entries[count].mtime_ms = mtime_ms;
    count++;
  }
  closedir(dir);
  if (failed != 0) {
    free_entries(entries, count);
    return throw_errno(env, failed, "scandir", path);
  }
  if (bad_name) {
    free_entries(entries, count);
    napi_value null_value;
    napi_get_null(env, &null_value);
    return null_value;
  }

  napi_value names, buffer, info, result;
  double *data;
  napi_create_array_with_length(env, count, &names);
  napi_create_arraybuffer(env, count * 3 * sizeof(double), (void **)&data, &buffer);
  for (size_t i = 0; i < count; i++) {
    napi_value name;
    napi_create_string_utf8(env, entries[i].name, entries[i].len, &name);
    napi_set_element(env, names, (uint32_t)i, name);
    data[3 * i] = entries[i].mode;
    data[3 * i + 1] = entries[i].size;
    data[3 * i + 2] = entries[i].mtime_ms;
  }
  free_entries(entries, count);
  napi_create_typedarray(env, napi_float64_array, count * 3, buffer, 0, &info);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "names", names);
  napi_set_named_property(env, result, "info", info);
  return result;
}

napi_value gear_scan_init(napi_env env, napi_value exports);
napi_value weak_hash_init(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "listDir", NAPI_AUTO_LENGTH, list_dir, NULL, &fn);
  napi_set_named_property(env, exports, "listDir", fn);
  return weak_hash_init(env, gear_scan_init(env, exports));
}
