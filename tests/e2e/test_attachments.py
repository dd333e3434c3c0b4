"""Files in a real browser: attach an image and a PDF (picker, paste, drop), send them, see them
in the sent message, and the model (the simulator) answer about both."""

from io import BytesIO
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect

from chat.models import Attachment
from tests.e2e.conftest import screenshot_dir
from tests.e2e.test_chat import last_reply, sign_in, start_conversation

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def png(colour: tuple[int, int, int] = (40, 120, 220)) -> bytes:
    out = BytesIO()
    image = Image.new("RGB", (96, 64), colour)
    image.paste((250, 200, 40), (20, 16, 60, 48))
    image.save(out, format="PNG")
    return out.getvalue()


def attach(page: Any) -> None:
    page.locator("[data-attach-input]").set_input_files(
        [
            {"name": "chart.png", "mimeType": "image/png", "buffer": png()},
            {"name": "report.pdf", "mimeType": "application/pdf", "buffer": PDF},
        ]
    )
    expect(page.locator("#composer-attachments .attachment-chip")).to_have_count(2)


def last_question(page: Any) -> Any:
    return page.locator("article.message-user").last


def send_and_see_the_answer(page: Any) -> None:
    page.get_by_label("Message", exact=True).fill("What do these show?")
    page.get_by_label("Message", exact=True).press("Enter")
    sent = last_question(page)
    expect(sent).to_contain_text("What do these show?")
    expect(sent.locator(".message-attachments img.attachment-preview")).to_have_count(1)
    expect(sent.locator(".message-attachments a[download='report.pdf']")).to_be_visible()
    expect(last_reply(page)).to_have_attribute("data-status", "completed", timeout=15_000)
    expect(last_reply(page)).to_contain_text("I can see what you attached: [image image/png,")
    expect(last_reply(page)).to_contain_text(f"[file report.pdf, {len(PDF)} bytes]")
    expect(page.locator("#composer-attachments .attachment-chip")).to_have_count(0)


def answered(page: Any, live_server_url: str, user: Any) -> None:
    """Signed in, in a conversation whose first reply has come."""
    sign_in(page, live_server_url, user)
    start_conversation(page, "Hello")
    expect(last_reply(page)).to_have_attribute("data-status", "completed", timeout=15_000)


def test_attach_an_image_and_a_pdf_and_the_model_answers_about_both(
    page, live_server_url, user, sim_deployment
) -> None:
    answered(page, live_server_url, user)
    expect(page.get_by_role("button", name="Attach images or PDFs")).to_be_visible()

    attach(page)
    chips = page.locator("#composer-attachments")
    expect(chips.locator("img.attachment-thumb")).to_have_count(1)
    expect(chips).to_contain_text("report.pdf")
    send_and_see_the_answer(page)

    sent = Attachment.objects.filter(message__isnull=False).order_by("pk")
    assert [a.name for a in sent] == ["chart.png", "report.pdf"]
    image_href = last_question(page).locator("a.attachment-link").first.get_attribute("href")
    assert page.request.get(image_href).body().startswith(b"\x89PNG")


def test_a_removed_chip_is_not_sent_and_files_alone_can_be_sent(
    page, live_server_url, user, sim_deployment
) -> None:
    answered(page, live_server_url, user)
    attach(page)
    page.get_by_role("button", name="Remove chart.png").click()
    expect(page.locator("#composer-attachments .attachment-chip")).to_have_count(1)
    page.get_by_role("button", name="Send").click()

    expect(last_question(page).locator(".message-attachments .attachment-chip")).to_have_count(1)
    expect(last_reply(page)).to_have_attribute("data-status", "completed", timeout=15_000)
    expect(last_reply(page)).to_contain_text("[file report.pdf,")
    expect(last_reply(page)).not_to_contain_text("[image")
    assert not Attachment.objects.filter(name="chart.png").exists(), "the removed draft is gone"


PASTE_AND_DROP = """async ([kind, bytes]) => {
  const data = new DataTransfer();
  data.items.add(new File([new Uint8Array(bytes)], kind + ".png", { type: "image/png" }));
  const textarea = document.querySelector("[data-composer-input]");
  if (kind === "pasted") {
    textarea.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true }));
  } else {
    for (const type of ["dragover", "drop"]) {
      const options = { dataTransfer: data, bubbles: true, cancelable: true };
      textarea.dispatchEvent(new DragEvent(type, options));
    }
  }
}"""


def test_an_image_pasted_or_dropped_on_the_composer_is_attached(
    page, live_server_url, user, sim_deployment
) -> None:
    sign_in(page, live_server_url, user)
    start_conversation(page, "Hello")
    page.evaluate(PASTE_AND_DROP, ["pasted", list(png())])
    expect(page.locator("#composer-attachments .attachment-chip")).to_have_count(1)
    page.evaluate(PASTE_AND_DROP, ["dropped", list(png((10, 160, 90)))])
    chips = page.locator("#composer-attachments .attachment-chip")
    expect(chips).to_have_count(2)
    expect(chips.nth(0)).to_contain_text("pasted.png")
    expect(chips.nth(1)).to_contain_text("dropped.png")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("device", "viewport"), [("desktop", (1280, 860)), ("phone", (390, 844))])
def test_attachment_screenshots(
    browser, live_server_url, user, sim_deployment, scheme, device, viewport
) -> None:
    size = {"width": viewport[0], "height": viewport[1]}
    context = browser.new_context(viewport=size, color_scheme=scheme, base_url=live_server_url)
    page = context.new_page()
    answered(page, live_server_url, user)
    docs = screenshot_dir()
    attach(page)
    page.get_by_label("Message", exact=True).fill("What do these show?")
    page.screenshot(path=str(docs / f"attachments-composer-{device}-{scheme}.png"))
    page.get_by_label("Message", exact=True).press("Enter")
    expect(last_reply(page)).to_contain_text("I can see what you attached")
    expect(last_reply(page)).to_have_attribute("data-status", "completed", timeout=15_000)
    expect(last_question(page).locator("img.attachment-preview")).to_have_js_property(
        "complete", True
    )
    last_question(page).evaluate("el => el.scrollIntoView({ block: 'start' })")
    page.screenshot(path=str(docs / f"attachments-sent-{device}-{scheme}.png"))
    context.close()
