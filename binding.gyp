{
  "targets": [
    {
      "target_name": "flowd_io",
      "sources": ["src/native/flowd_io.c", "src/native/offload.c", "src/native/tunnel-offload.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
