;; A WASI Cargo in the text format: reads the job input (a JSON string) from stdin and
;; answers with the Cargo I/O protocol: a "ready" status, the input echoed as one token,
;; then "done". It is devnet's sample Cargo and a test fixture.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; 0..8: iovec, 8..12: count, 16..: text, 1024..: stdin buffer
  (data (i32.const 16) "{\"type\":\"status\",\"message\":\"ready\"}\n")     ;; 36 bytes at 16
  (data (i32.const 64) "{\"type\":\"token\",\"content\":")                   ;; 26 bytes at 64
  (data (i32.const 96) "}\n{\"type\":\"done\"}\n")                           ;; 18 bytes at 96
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (local $n i32) (local $total i32)
    (call $write (i32.const 16) (i32.const 36))
    ;; read stdin until EOF into 1024..
    (block $eof
      (loop $more
        (i32.store (i32.const 0) (i32.add (i32.const 1024) (local.get $total)))
        (i32.store (i32.const 4) (i32.const 4096))
        (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $total (i32.add (local.get $total) (local.get $n)))
        (br $more)))
    ;; {"type":"token","content":<the input, a JSON string>}
    (call $write (i32.const 64) (i32.const 26))
    (call $write (i32.const 1024) (local.get $total))
    (call $write (i32.const 96) (i32.const 18))))
