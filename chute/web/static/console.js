// chute console: drag-and-drop uploads through presigned PUT grants, with progress.
// No credentials here: the console mints a grant for one object, the browser PUTs to S3.
"use strict";

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

function uploadRow(file) {
  const li = document.createElement("li");
  const name = document.createElement("span");
  name.className = "upload-name";
  name.textContent = file.name; // textContent: a file name is never HTML
  const bar = document.createElement("progress");
  bar.max = file.size || 1;
  bar.value = 0;
  const state = document.createElement("span");
  state.className = "upload-state";
  state.textContent = "waiting";
  li.append(name, " ", bar, " ", state);
  document.getElementById("uploads").prepend(li);
  return {li, bar, state};
}

function post(url, document) {
  return fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrfToken()},
    body: JSON.stringify(document),
  });
}

// XHR rather than fetch: it reports upload progress
function put(url, headers, body, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) progress(e.loaded); };
    xhr.onload = () => (xhr.status < 300 ? resolve() : reject(new Error(`S3 said ${xhr.status}`)));
    xhr.onerror = () => reject(new Error("network error (is the bucket's CORS open to this console?)"));
    xhr.send(body);
  });
}

async function uploadOne(file) {
  const row = uploadRow(file);
  try {
    const answer = await post("/api/grant", {name: file.name, size: file.size});
    const grant = await answer.json().catch(() => ({}));
    if (!answer.ok) throw new Error(grant.error || `grant refused (${answer.status})`);
    row.state.textContent = "uploading";
    let how = "";
    if (grant.kind === "multipart") {
      // parts in sequence, each a presigned PUT; progress over the whole file
      for (const part of grant.parts) {
        const start = (part.number - 1) * grant.partSize;
        const blob = file.slice(start, start + grant.partSize);
        row.state.textContent = `uploading part ${part.number} of ${grant.parts.length}`;
        await put(part.url, {}, blob, (loaded) => { row.bar.value = start + loaded; });
      }
      const done = await post("/api/complete", {key: grant.key, uploadId: grant.uploadId});
      const completed = await done.json().catch(() => ({}));
      if (!done.ok) throw new Error(completed.error || "not completed");
      how = ` (${completed.parts} parts)`;
    } else {
      await put(grant.url, grant.headers || {}, file, (loaded) => { row.bar.value = loaded; });
    }
    row.bar.value = row.bar.max;
    row.state.textContent = `uploaded as ${grant.key}${how}`;
    row.li.dataset.key = grant.key;
    row.li.classList.add("done");
  } catch (err) {
    row.state.textContent = `failed: ${err.message}`;
    row.li.classList.add("failed");
  }
}

function uploadAll(files) {
  const list = Array.from(files);
  if (!list.length) return;
  const total = list.reduce((n, f) => n + f.size, 0);
  const names = list.map((f) => f.name).join(", ");
  if (!window.confirm(`Upload ${list.length} file(s), ${total} bytes, to staging? ${names}`)) return;
  return Promise.all(list.map(uploadOne));
}

document.addEventListener("DOMContentLoaded", () => {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("file-input");
  if (!zone || !input) return;
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    uploadAll(e.dataTransfer.files);
  });
  input.addEventListener("change", () => { uploadAll(input.files); input.value = ""; });
});
