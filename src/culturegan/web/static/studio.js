// culturegan studio: plain JavaScript over the JSON/PNG API (no build step).
"use strict";

const studio = (() => {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 300;

  function say(text) {
    $("message").textContent = text || "";
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      return body.error || response.statusText;
    } catch (e) {
      return `${response.status} ${response.statusText}`;
    }
  }

  async function submitJobs(url, data) {
    data.set("async", "1");
    const response = await fetch(url, { method: "POST", body: data, credentials: "same-origin" });
    if (!response.ok) {
      throw new Error(await errorText(response));
    }
    return (await response.json()).jobs;
  }

  // Poll one job until it ends; onUpdate(status) after every answer.
  async function follow(jobId, onUpdate) {
    for (;;) {
      const response = await fetch(`/api/jobs/${jobId}`, { credentials: "same-origin" });
      if (!response.ok) {
        throw new Error(await errorText(response));
      }
      const status = await response.json();
      onUpdate(status);
      if (["done", "failed", "cancelled"].includes(status.state)) {
        return status;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  function describeState(status) {
    if (status.state === "queued") return `queued (position ${status.position})`;
    if (status.state === "running") return `running ${Math.round(status.progress * 100)}%`;
    if (status.state === "failed") return `failed: ${status.error}`;
    return status.state;
  }

  // ------------------------------------------------------------------ model controls

  // Fill #model's details: #target's cultures, and show only the options the model honours.
  function modelControls(models) {
    function showOptions() {
      const model = models[$("model").value];
      if (!model) return;
      const target = $("target");
      target.replaceChildren();
      for (const name of model.targets) {
        const option = document.createElement("option");
        option.value = name;
        option.textContent = name;
        option.selected = name === model.default_target;
        target.appendChild(option);
      }
      for (const label of document.querySelectorAll("[data-option]")) {
        label.classList.toggle("hidden", !model.options.includes(label.dataset.option));
      }
      if ($("no-options")) $("no-options").classList.toggle("hidden", model.options.length > 0);
      // The finish the model's card recommends, if any; the user may change it.
      if ($("finish")) $("finish").value = model.finish || "";
      if ($("shifts")) $("shifts").value = String(model.shifts || 1);
      if ($("model-info")) {
        $("model-info").textContent = `${model.kind} model (${model.origin}); domains: ${model.domains.join(", ")}`;
      }
    }

    fetch("/api/models", { credentials: "same-origin" })
      .then(async (response) => {
        if (!response.ok) throw new Error(await errorText(response));
        const broken = [];
        for (const model of (await response.json()).models) {
          if (model.error) {
            broken.push(`${model.id}: ${model.error}`);
            for (const option of $("model").querySelectorAll("option")) {
              if (option.value === model.id) option.remove();
            }
          } else {
            models[model.id] = model;
          }
        }
        if (broken.length) say(`models that do not open: ${broken.join("; ")}`);
        showOptions();
        document.body.dataset.ready = "1";
      })
      .catch((error) => say(error.message));

    $("model").addEventListener("change", showOptions);
    $("strength").addEventListener("input", () => {
      $("strength-value").textContent = $("strength").value;
    });
  }

  // ------------------------------------------------------------------ stylize page

  function initStylize() {
    const models = {};
    const done = [];
    modelControls(models);

    function formData() {
      const model = models[$("model").value];
      const data = new FormData();
      for (const file of $("file").files) data.append("file", file);
      if ($("sample").value) data.set("sample", $("sample").value);
      data.set("model", model.id);
      data.set("target", $("target").value);
      if ($("finish").value) data.set("finish", $("finish").value);
      if ($("shifts").value !== "1") data.set("shifts", $("shifts").value);
      if (model.options.includes("strength")) data.set("strength", $("strength").value);
      if (model.options.includes("seed")) {
        data.set("seed", $("seed").value);
        data.set("samples", $("samples").value);
      }
      if (model.options.includes("mix") && $("mix").value.trim()) data.set("mix", $("mix").value);
      if (model.options.includes("reference") && $("reference").files.length) {
        data.set("reference", $("reference").files[0]);
      }
      return data;
    }

    function card(job) {
      const element = document.createElement("div");
      element.className = "card";
      element.dataset.job = job.id;
      element.innerHTML = `
        <div class="label"></div>
        <div class="compare">
          <img class="before" alt="input">
          <img class="after hidden" alt="result">
          <input type="range" min="0" max="100" value="50" aria-label="before / after">
        </div>
        <div class="state"></div>
        <a class="download hidden">Download PNG</a>`;
      element.querySelector(".label").textContent = job.label;
      element.querySelector(".before").src = `/api/jobs/${job.id}/input.png`;
      const slider = element.querySelector("input");
      const after = element.querySelector(".after");
      slider.addEventListener("input", () => {
        after.style.clipPath = `inset(0 0 0 ${slider.value}%)`;
      });
      $("results").appendChild(element);
      return element;
    }

    function updateZip() {
      const zip = $("zip");
      zip.classList.toggle("hidden", done.length < 1);
      zip.href = `/api/zip?ids=${done.join(",")}`;
    }

    $("stylize-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      say("");
      let jobs;
      try {
        jobs = await submitJobs("/api/stylize", formData());
      } catch (error) {
        say(error.message);
        return;
      }
      for (const job of jobs) {
        const element = card(job);
        const state = element.querySelector(".state");
        follow(job.id, (status) => {
          state.textContent = describeState(status);
        })
          .then((status) => {
            if (status.state !== "done") return;
            const after = element.querySelector(".after");
            after.src = `/api/jobs/${job.id}/result.png`;
            after.classList.remove("hidden");
            const link = element.querySelector(".download");
            link.href = `/api/jobs/${job.id}/result.png?download=1`;
            link.classList.remove("hidden");
            element.classList.add("done");
            done.push(job.id);
            updateZip();
          })
          .catch((error) => {
            state.textContent = error.message;
          });
      }
    });
  }

  // ------------------------------------------------------------------ compare page

  function initCompare() {
    $("compare-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      say("");
      const data = new FormData();
      for (const file of $("file").files) data.append("file", file);
      if ($("sample").value && !$("file").files.length) data.set("sample", $("sample").value);
      if ($("model").value) data.set("model", $("model").value);
      const target = $("grid-result");
      target.replaceChildren();
      try {
        const [job] = await submitJobs("/api/grid", data);
        const state = document.createElement("p");
        const live = document.createElement("img");
        live.id = "grid-partial";
        live.alt = "culture grid so far";
        target.append(state, live);
        let shown = 0;
        const status = await follow(job.id, (s) => {
          state.textContent = describeState(s);
          if (s.partial > shown) {
            // the grid so far: cultures appear column by column as they are ready
            shown = s.partial;
            live.src = `/api/jobs/${job.id}/partial.png?v=${shown}`;
          }
        });
        live.remove();
        if (status.state !== "done") return;
        const image = document.createElement("img");
        image.id = "grid-image";
        image.alt = "culture grid";
        image.src = `/api/jobs/${job.id}/result.png`;
        const link = document.createElement("a");
        link.href = `/api/jobs/${job.id}/result.png?download=1`;
        link.textContent = "Download PNG";
        target.append(image, document.createElement("br"), link);
      } catch (error) {
        say(error.message);
      }
    });
  }

  // ------------------------------------------------------------------ video page

  function initVideo() {
    const models = {};
    modelControls(models);
    let current = null;

    $("cancel").addEventListener("click", async () => {
      if (!current) return;
      await fetch(`/api/jobs/${current}`, { method: "DELETE", credentials: "same-origin" });
    });

    $("video-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      say("");
      const model = models[$("model").value];
      const data = new FormData();
      if ($("file").files.length) data.set("file", $("file").files[0]);
      data.set("model", model.id);
      data.set("target", $("target").value);
      if (model.options.includes("strength")) data.set("strength", $("strength").value);
      if (model.options.includes("seed")) data.set("seed", $("seed").value);
      $("video-out").classList.add("hidden");
      $("video-download").classList.add("hidden");
      try {
        const [job] = await submitJobs("/api/video", data);
        current = job.id;
        $("video-result").classList.remove("hidden");
        $("cancel").classList.remove("hidden");
        const status = await follow(job.id, (s) => {
          $("progress").value = s.progress;
          $("video-state").textContent = describeState(s);
        });
        $("cancel").classList.add("hidden");
        if (status.state !== "done") return;
        $("video-out").src = `/api/jobs/${job.id}/result.mp4`;
        $("video-out").classList.remove("hidden");
        $("video-download").href = `/api/jobs/${job.id}/result.mp4?download=1`;
        $("video-download").classList.remove("hidden");
      } catch (error) {
        say(error.message);
      }
    });
  }

  return { initStylize, initCompare, initVideo };
})();
