// tss.js requires ffi-napi only for Windows TBS; the tests reach swtpm over TCP.
throw new Error("ffi-napi is not available here: tss.js reaches the TPM over TCP in these tests");
