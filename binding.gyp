{
  "targets": [
    {
      "target_name": "tongbu_native",
      "sources": ["native/dir-list.c", "native/gear-scan.c", "native/weak-hash.c"],
      "cflags": ["-O2", "-ffp-contract=off"]
    }
  ]
}
