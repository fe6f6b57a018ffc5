// A standard tus client, tus-js-client from the npm registry, unchanged, uploading
// to the upload example's tus endpoint (run by tus_client.sh).
//
//   node tus_client.js ENDPOINT FILE CHUNK_SIZE
//
// Uploads FILE in parts of CHUNK_SIZE bytes, with its name in Upload-Metadata.
// Then a second upload of the same file is cut after its first part (the client
// aborts, as a dropped connection would) and resumed from the URL the server gave:
// tus-js-client asks the server for the offset (HEAD) and sends only the rest.
// Prints one line per upload, `uploaded URL BYTES`, and exits 0; on any error,
// prints it and exits 1.
"use strict";

const fs = require("fs");
const path = require("path");
const tus = require("tus-js-client");

const [endpoint, file, chunkArg] = process.argv.slice(2);
if (!endpoint || !file || !chunkArg) {
  console.error("usage: node tus_client.js ENDPOINT FILE CHUNK_SIZE");
  process.exit(2);
}
const chunkSize = Number(chunkArg);
const data = fs.readFileSync(file);

// Starts an upload of `data`; resolves with the Upload once `onSuccess` fires.
// With `stopAfter`, aborts once that many bytes are acknowledged and resolves
// with the Upload then (its `url` is where it can resume).
function upload(options, stopAfter) {
  return new Promise((resolve, reject) => {
    let done = false;
    const up = new tus.Upload(data, {
      endpoint,
      chunkSize,
      retryDelays: null,
      metadata: { filename: path.basename(file), filetype: "application/octet-stream" },
      onError: (error) => {
        if (!done) reject(error);
      },
      onChunkComplete: (_chunk, accepted) => {
        if (stopAfter !== undefined && accepted >= stopAfter && !done) {
          done = true;
          up.abort(false).then(() => resolve(up), reject);
        }
      },
      onSuccess: () => {
        if (!done) {
          done = true;
          resolve(up);
        }
      },
      ...options,
    });
    up.start();
  });
}

(async () => {
  const whole = await upload({});
  console.log(`uploaded ${whole.url} ${data.length}`);

  const cut = await upload({}, chunkSize);
  if (!cut.url) throw new Error("the cut upload has no URL to resume from");
  const resumed = await upload({ uploadUrl: cut.url });
  if (resumed.url !== cut.url) throw new Error(`resumed at ${resumed.url}, not ${cut.url}`);
  console.log(`uploaded ${resumed.url} ${data.length}`);
})().catch((error) => {
  console.error(`tus upload failed: ${error}`);
  process.exit(1);
});
