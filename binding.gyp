{
  "targets": [
    {
      "target_name": "tongbu_native",
      "sources": ["native/dir-list.c", "native/gear-scan.c"],
      "cflags": ["-O2", "-ffp-contract=off"]
    }
  ]
}
