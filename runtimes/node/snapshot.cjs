// The entry of Node's startup snapshot (/var/runtime/snapshot.blob, built with the image).
//
// Debian's nodejs is built without Node's own startup snapshot, so each start runs Node's
// internal bootstrap from source: about twice the start time of the official build. A
// user-land snapshot taken after that bootstrap gives most of it back. V8 accepts a snapshot
// only with the flags it was built with, heap limits included, so the image has one for the
// 128 MB heap (the default memory, and that of pre-started containers); ./bootstrap uses it
// for that size only and starts Node plainly for any other.
'use strict';

const Module = require('module');

require('v8').startupSnapshot.setDeserializeMainFunction(() => {
  process.argv[1] = '/var/runtime/index.mjs';
  Module.runMain();
});
