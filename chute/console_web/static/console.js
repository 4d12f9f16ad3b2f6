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

async function uploadOne(file) {
  const row = uploadRow(file);
  try {
    const answer = await fetch("/api/grant", {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrfToken()},
      body: JSON.stringify({name: file.name, size: file.size}),
    });
    const grant = await answer.json().catch(() => ({}));
    if (!answer.ok) throw new Error(grant.error || `grant refused (${answer.status})`);
    row.state.textContent = "uploading";
    await new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", grant.url);
      for (const [k, v] of Object.entries(grant.headers || {})) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) row.bar.value = e.loaded; };
      xhr.onload = () => (xhr.status < 300 ? resolve() : reject(new Error(`S3 said ${xhr.status}`)));
      xhr.onerror = () => reject(new Error("network error (is the bucket's CORS open to this console?)"));
      xhr.send(file);
    });
    row.bar.value = row.bar.max;
    row.state.textContent = `uploaded as ${grant.key}`;
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
