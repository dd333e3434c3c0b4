"""The human explanations of replies that did not end well, as the runner and saver give them."""

from django.utils.translation import gettext

from chat import llm


def no_deployment_error() -> llm.LLMError:
    return llm.LLMError(
        kind=llm.ErrorKind.UNAVAILABLE,
        message=gettext(
            "No model is available for this conversation. Please contact an administrator."
        ),
        detail="no enabled deployment",
    )


def shutdown_error() -> llm.LLMError:
    return llm.LLMError(
        kind=llm.ErrorKind.STREAM_DROPPED,
        message=gettext(
            "The server stopped while this reply was being written. Retry to ask again."
        ),
        detail="reply task cancelled by shutdown",
    )


def incomplete_error(reason: str) -> llm.LLMError:
    if reason == "content_filter":
        return llm.LLMError(
            kind=llm.ErrorKind.CONTENT_FILTERED,
            message=gettext("The reply was cut short by Azure's content filter."),
            detail="incomplete: content_filter",
        )
    if reason == "max_output_tokens":
        return llm.LLMError(
            kind=llm.ErrorKind.BAD_REQUEST,
            message=gettext("The reply reached the longest answer this deployment allows."),
            detail="incomplete: max_output_tokens",
        )
    return llm.LLMError(
        kind=llm.ErrorKind.STREAM_DROPPED,
        message=gettext("The reply ended early. Retry to ask again."),
        detail=f"incomplete: {reason}",
    )


def unexpected_error() -> llm.LLMError:
    return llm.LLMError(
        kind=llm.ErrorKind.UNAVAILABLE,
        message=gettext("Something went wrong while writing this reply. Retry to ask again."),
        detail="unexpected error in reply task",
    )
