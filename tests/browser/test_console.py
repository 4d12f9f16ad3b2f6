"""The web console in a real browser (headless chromium), over the embedded runtime: upload,
watch, see why a file failed, fix it, rerun it — and nothing a user names runs as HTML."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from chute.local.embedded import EmbeddedAws
from tests.browser.conftest import save_screenshot
from tests.support.pipeline import wait_until

GOOD = b"id,name,amount\n1,apple,3\n2,pear,5\n"
BAD = b"id,name,amount\n1,apple,3\n2,pear\n3,plum,7\n"  # row 3 is short: MalformedContent

DROP = """([zone, files]) => {
  const dt = new DataTransfer();
  for (const f of files) dt.items.add(new File([f.body], f.name, {type: "text/csv"}));
  document.querySelector(zone).dispatchEvent(
    new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
}"""


def row(page: Any, key_start: str) -> Any:
    return page.locator(f'tr[data-key^="{key_start}"]')


def test_upload_good_and_bad_by_drag_and_drop_and_see_why_one_failed(page: Any) -> None:
    # GIVEN the console's list
    page.goto("/")
    expect(page.get_by_test_id("counts")).to_be_visible()
    # WHEN a good and a bad file are dropped on the page (and the upload confirmed)
    page.evaluate(
        DROP,
        [
            "#dropzone",
            [
                {"name": "good.csv", "body": GOOD.decode()},
                {"name": "bad.csv", "body": BAD.decode()},
            ],
        ],
    )
    # THEN both upload with progress and appear in the list without a reload
    assert any("Upload 2 file(s)" in m for m in page.dialogs)
    expect(page.locator("#uploads li.done")).to_have_count(2)
    good, bad = row(page, "console/good_"), row(page, "console/bad_")
    expect(good).to_have_attribute("data-status", "succeeded")
    expect(bad).to_have_attribute("data-status", "quarantined")
    expect(bad).to_contain_text("MalformedContent")
    save_screenshot(page, "console-list")
    # WHEN the quarantined one is opened
    bad.locator("a").click()
    # THEN the graph shows where it failed, and the report shows the bad row of the original
    expect(page.get_by_test_id("outcome")).to_have_text("quarantined")
    graph = page.get_by_test_id("graph")
    expect(graph.locator('g[data-state="ConvertInLambda"]')).to_have_attribute(
        "data-status", "caught"
    )
    expect(graph.locator('g[data-state="Rejected"]')).to_have_attribute("data-status", "failed")
    expect(graph.locator('g[data-state="Archive"]')).to_have_attribute("data-status", "not-run")
    expect(graph.locator('g[data-state="Validate"]')).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_test_id("error-name")).to_have_text("MalformedContent")
    expect(page.get_by_test_id("message")).to_contain_text("row 3")
    expect(page.locator('[data-testid="preview"] tr.bad')).to_have_attribute("data-row", "3")
    original = page.get_by_test_id("download").filter(has_text="original")
    assert page.request.get(original.get_attribute("href")).body() == BAD
    save_screenshot(page, "console-failed")


def test_requeue_after_fixing_the_file(page: Any, embedded: EmbeddedAws) -> None:
    # GIVEN a quarantined file
    r = embedded.resources
    s3 = embedded.client("s3")
    key = "partners/acme/requeue-me.csv"
    s3.put_object(Bucket=r.staging_bucket, Key=key, Body=BAD)
    page.goto(f"/?prefix={key}")
    expect(row(page, key)).to_have_attribute("data-status", "quarantined")
    row(page, key).locator("a").click()
    expect(page.get_by_test_id("requeue")).to_be_visible()
    # WHEN the file is fixed in quarantine and requeued from the page (confirmed)
    s3.put_object(Bucket=r.quarantine_bucket, Key=key, Body=GOOD)
    page.get_by_test_id("requeue").click()
    # THEN the page says where it went, and the file runs again to success
    expect(page.get_by_test_id("result")).to_contain_text("requeued")
    assert any("Requeue" in m for m in page.dialogs)
    # AND the list speaks of the file by its latest outcome: one succeeded row, none quarantined
    page.goto(f"/?prefix={key}")
    expect(page.locator(f'tr[data-key="{key}"][data-status="succeeded"]')).to_have_count(1)
    expect(page.locator(f'tr[data-key="{key}"][data-status="quarantined"]')).to_have_count(0)
    expect(page.locator('[data-testid="counts"] .st-quarantined b')).to_have_text("0")


def test_rerun_a_transient_failure(page: Any, embedded: EmbeddedAws) -> None:
    # GIVEN an execution that failed on a transient error (retries exhausted)
    r = embedded.resources
    key = "partners/acme/transient.csv"
    embedded.inject_fault("convert", "StorageUnavailable", times=5)
    embedded.client("s3").put_object(Bucket=r.staging_bucket, Key=key, Body=GOOD)
    page.goto(f"/?prefix={key}")
    expect(row(page, key)).to_have_attribute("data-status", "failed")
    row(page, key).locator("a").click()
    expect(page.get_by_test_id("error-name")).to_have_text("StorageUnavailable")
    expect(
        page.get_by_test_id("graph").locator('g[data-state="ConvertInLambda"]')
    ).to_have_attribute("data-status", "failed")
    # WHEN it is rerun from the page
    page.get_by_test_id("rerun").click()
    # THEN it is redriven (the same execution resumes at the failed state, as on AWS) and succeeds
    result = page.get_by_test_id("result")
    expect(result).to_contain_text("redriven")
    expect(result).to_contain_text("resumed at the failed state")
    result.locator("a").click()
    expect(page.get_by_test_id("outcome")).to_have_text("succeeded")
    # AND once it succeeded there is nothing left to rerun (the server skips a succeeded one too)
    page.reload()
    expect(page.get_by_test_id("outcome")).to_have_text("succeeded")
    expect(page.get_by_test_id("rerun")).to_have_count(0)


def test_quarantined_rerun_is_refused_without_force(page: Any, embedded: EmbeddedAws) -> None:
    key = "partners/acme/refused.csv"
    embedded.client("s3").put_object(Bucket=embedded.resources.staging_bucket, Key=key, Body=BAD)
    page.goto(f"/?prefix={key}")
    expect(row(page, key)).to_have_attribute("data-status", "quarantined")
    row(page, key).locator("a").click()
    page.get_by_test_id("rerun").click()
    expect(page.get_by_test_id("result")).to_contain_text("refused")
    expect(page.get_by_test_id("result")).to_contain_text("requeue")


SCRIPT_KEY = 'xss/<script>window.__xss="key"</script>.csv'
IMG_KEY = 'xss/<img src=x onerror="window.__xss=1">.csv'
SCRIPT_VALUE = (
    b'id,name,amount\n1,<script>window.__xss="value"</script>,3\n'
    b'2,"<img src=x onerror=window.__xss=2>"\n'
)


@pytest.mark.parametrize("key", [SCRIPT_KEY, IMG_KEY])
def test_keys_and_values_are_text_never_html(page: Any, embedded: EmbeddedAws, key: str) -> None:
    # GIVEN a file whose key is HTML and whose (bad) content carries HTML values
    embedded.client("s3").put_object(
        Bucket=embedded.resources.staging_bucket, Key=key, Body=SCRIPT_VALUE
    )
    # WHEN the list and the execution are shown
    page.goto("/?prefix=xss/")
    target = page.locator("tr[data-key]").filter(has_text=key)
    expect(target).to_have_attribute("data-status", "quarantined")
    # THEN the key is shown as text, and nothing ran
    expect(target.locator("td.key")).to_have_text(key)
    assert page.evaluate("window.__xss") is None
    assert page.locator("td.key script, td.key img").count() == 0
    target.locator("a").click()
    expect(page.get_by_test_id("key")).to_have_text(key)
    preview = page.get_by_test_id("preview")
    expect(preview).to_contain_text('<script>window.__xss="value"</script>')
    expect(preview).to_contain_text("<img src=x onerror=window.__xss=2>")
    assert preview.locator("script, img").count() == 0
    assert page.evaluate("window.__xss") is None


def test_actions_refuse_cross_site_requests(page: Any, console: Any) -> None:
    # GIVEN a page of the console (a session and its token)
    page.goto("/")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    origin = console.url.rstrip("/")
    # WHEN actions are posted without the token, with a wrong one, or from another origin
    without = page.request.post("/actions/requeue", form={"key": "x"}, headers={"Origin": origin})
    wrong = page.request.post(
        "/actions/requeue", form={"key": "x"}, headers={"Origin": origin, "X-CSRF-Token": "0" * 64}
    )
    elsewhere = page.request.post(
        "/actions/requeue",
        form={"key": "x"},
        headers={"Origin": "http://evil.example", "X-CSRF-Token": token},
    )
    allowed = page.request.post(
        "/actions/requeue", form={"key": "x"}, headers={"Origin": origin, "X-CSRF-Token": token}
    )
    # THEN all three are refused; the real one reaches the operation (nothing to requeue)
    assert (without.status, wrong.status, elsewhere.status) == (403, 403, 403)
    assert allowed.status == 400 and "nothing in quarantine" in allowed.text()


def test_glance_counts_throughput_and_failures(page: Any, embedded: EmbeddedAws) -> None:
    # GIVEN files processed and quarantined by the tests before (and one more of each now)
    s3 = embedded.client("s3")
    s3.put_object(Bucket=embedded.resources.staging_bucket, Key="glance/ok.csv", Body=GOOD)
    s3.put_object(Bucket=embedded.resources.staging_bucket, Key="glance/bad.csv", Body=BAD)
    wait_until(
        lambda: (
            page.goto("/fragments/list?prefix=glance/")
            and page.locator('tr[data-status="succeeded"]').count() == 1
            and page.locator('tr[data-status="quarantined"]').count() == 1
        ),
        timeout=60,
        what="the glance files",
    )
    # WHEN the glance page is shown
    page.goto("/glance")
    # THEN the lambda route has files per minute and the failures are counted by error name
    glance = page.get_by_test_id("glance")
    expect(glance.locator('tr[data-route="lambda"]')).to_be_visible()
    assert re.search(r"MalformedContent\s+\d+", glance.inner_text())


def test_the_batch_route_shows_its_job(page: Any, embedded: EmbeddedAws) -> None:
    # GIVEN a file large enough for the Batch route, with a bad row far down
    key = "partners/acme/large-bad.csv"
    rows = b"".join(b"%d,item-%d,%d\n" % (i, i, i * 3) for i in range(1, 200))
    body = b"id,name,amount\n" + rows + b"200,short\n"
    embedded.client("s3").put_object(Bucket=embedded.resources.staging_bucket, Key=key, Body=body)
    # WHEN its execution is opened
    page.goto(f"/?prefix={key}")
    expect(row(page, key)).to_have_attribute("data-status", "quarantined")
    expect(row(page, key)).to_contain_text("batch")
    row(page, key).locator("a").click()
    # THEN the Batch job is shown with its exit code, and the graph went through ConvertInBatch
    batch = page.get_by_test_id("batch")
    expect(batch).to_contain_text("jobId")
    expect(batch).to_contain_text("65: the file is bad")
    expect(batch).to_contain_text("attemptExitCodes")
    graph = page.get_by_test_id("graph")
    expect(graph.locator('g[data-state="ConvertInBatch"]')).to_have_attribute(
        "data-status", "caught"
    )
    expect(graph.locator('g[data-state="BatchConvertRejected"]')).to_have_attribute(
        "data-status", "succeeded"
    )
    expect(page.locator('[data-testid="preview"] tr.bad')).to_have_attribute("data-row", "201")


def test_a_large_file_is_uploaded_in_parts(page: Any, console: Any) -> None:
    # GIVEN a console that uploads files of 6 MiB and more in 5 MiB parts
    console.app.data.multipart_threshold = 6 * 1024 * 1024
    console.app.data.part_size = 5 * 1024 * 1024
    try:
        page.goto("/")
        # WHEN a 6.5 MiB CSV is dropped
        page.evaluate(
            """([zone, rows]) => {
              const dt = new DataTransfer();
              let body = "id,name,amount\\n";
              for (let i = 1; i <= rows; i++) body += `${i},item-${i},${i * 3}\\n`;
              dt.items.add(new File([body], "large.csv", {type: "text/csv"}));
              document.querySelector(zone).dispatchEvent(
                new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
            }""",
            ["#dropzone", 300_000],
        )
        # THEN it goes up in two parts, is completed, and runs through the pipeline
        done = page.locator("#uploads li.done")
        expect(done).to_have_count(1)
        key = done.get_attribute("data-key")
        assert key and key.startswith("console/large_")
        expect(done).to_contain_text("(2 parts)")
        expect(row(page, key)).to_have_attribute("data-status", "succeeded")
        expect(row(page, key)).to_contain_text("batch")
    finally:
        console.app.data.multipart_threshold = 64 * 1024 * 1024
        console.app.data.part_size = 16 * 1024 * 1024
