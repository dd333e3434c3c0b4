"""Images and PDFs inline, through the real SDK: the shapes Azure takes, and its refusals."""

import base64

import openai
import pytest
from openai import OpenAI

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
PDF = b"%PDF-1.4\n%%EOF\n"


def data_url(content_type: str, data: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def ask(
    client: OpenAI, *parts: dict[str, str], **options: object
) -> openai.types.responses.Response:
    return client.responses.create(
        model="gpt-4.1",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "What is this?"}, *parts]}
        ],
        **options,
    )


def test_an_image_and_a_pdf_are_read_and_answered_about(client: OpenAI) -> None:
    response = ask(
        client,
        {"type": "input_image", "image_url": data_url("image/png", PNG)},
        {
            "type": "input_file",
            "filename": "report.pdf",
            "file_data": data_url("application/pdf", PDF),
        },
    )

    assert response.status == "completed"
    assert response.output_text.startswith("I can see what you attached:")
    assert f"[image image/png, {len(PNG)} bytes]" in response.output_text
    assert f"[file report.pdf, {len(PDF)} bytes]" in response.output_text


def test_a_chained_turn_recalls_what_was_attached(client: OpenAI) -> None:
    first = ask(client, {"type": "input_image", "image_url": data_url("image/png", PNG)})
    recalled = client.responses.create(
        model="gpt-4.1", input="[[sim recall]] And now?", previous_response_id=first.id
    )
    assert f"[image image/png, {len(PNG)} bytes]" in recalled.output_text


@pytest.mark.parametrize(
    ("part", "message"),
    [
        ({"type": "input_image", "image_url": "https://example.org/cat.png"}, "downloading"),
        ({"type": "input_image", "image_url": "data:image/png;base64,!!!"}, "base64"),
        (
            {"type": "input_image", "image_url": data_url("image/png", b"GIF89a...")},
            "could not be read",
        ),
        (
            {"type": "input_image", "image_url": data_url("image/bmp", b"BM")},
            "Unsupported image type",
        ),
        ({"type": "input_file", "file_data": data_url("application/pdf", PDF)}, "filename"),
        (
            {
                "type": "input_file",
                "filename": "a.pdf",
                "file_data": data_url("application/pdf", b"hi"),
            },
            "as a PDF",
        ),
        ({"type": "input_audio", "data": "x"}, "Invalid content part type"),
    ],
)
def test_malformed_parts_are_refused_as_azure_refuses_them(
    client: OpenAI, part: dict[str, str], message: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        ask(client, part)
    assert message in str(refused.value)
