"""The errors the simulator answers with before any generation, worded as Azure words them:
a wrong key, an unknown response, and the faults that refuse a request outright."""

import math

from azure_sim.asgi_http import HTTPError
from azure_sim.objects import content_filter_results
from azure_sim.options import Fault, Options

ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
    "valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)

_AZURE_OPERATION_NAMES = {
    "create": "Responses_Create",
    "retrieve": "Responses_Get",
    "delete": "Responses_Delete",
    "cancel": "Responses_Cancel",
    "input_items": "Responses_ListInputItems",
}


def not_found(response_id: str) -> HTTPError:
    return HTTPError(404, None, f"Response with id '{response_id}' not found.")


def _rate_limited(op: str, retry_after_ms: int) -> HTTPError:
    seconds = max(1, math.ceil(retry_after_ms / 1000))
    message = (
        f"Requests to the {_AZURE_OPERATION_NAMES[op]} Operation under Azure OpenAI API version "
        f"v1 have exceeded call rate limit of your current AIServices S0 pricing tier. Please "
        f"retry after {seconds} seconds. Please contact Azure support service if you would like "
        f"to further increase the default rate limit."
    )
    headers = [
        (b"retry-after", str(seconds).encode()),
        (b"retry-after-ms", str(retry_after_ms).encode()),
        (b"x-ratelimit-remaining-requests", b"0"),
        (b"x-ratelimit-remaining-tokens", b"0"),
    ]
    return HTTPError(429, "429", message, error_type=None, headers=headers)


def _prompt_filtered(category: str) -> HTTPError:
    results = content_filter_results(category)
    message = (
        "The response was filtered due to the prompt triggering Azure OpenAI's content "
        "management policy. Please modify your prompt and retry. To learn more about our content "
        "filtering policies please read our documentation: "
        "https://go.microsoft.com/fwlink/?linkid=2198766"
    )
    details = {
        "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": results},
        "content_filters": [
            {"blocked": True, "source_type": "prompt", "content_filter_results": results}
        ],
    }
    return HTTPError(
        400, "content_filter", message, param="prompt", error_type=None, details=details
    )


def fault_error(options: Options, op: str) -> HTTPError | None:
    """The error reply a fault stands for, when it is answered before any generation."""
    match options.fault:
        case Fault.RATE_LIMIT:
            return _rate_limited(op, options.retry_after_ms)
        case Fault.SERVER_ERROR:
            return HTTPError(
                500,
                "server_error",
                "The server had an error while processing your request. Sorry about that!",
                error_type="server_error",
            )
        case Fault.UNAVAILABLE:
            return HTTPError(
                503,
                "ServiceUnavailable",
                "The service is temporarily unable to process your request. "
                "Please try again later.",
                error_type=None,
            )
        case Fault.CONTENT_FILTER_PROMPT if op == "create":
            return _prompt_filtered(options.category)
        case Fault.CONTEXT_TOO_LONG if op == "create":
            return HTTPError(
                400,
                "context_length_exceeded",
                "Your input exceeds the context window of this model. "
                "Please adjust your input and try again.",
                param="input",
            )
    return None
