"""How chat turns become the text a judge reads: the one rule, for training rows and rewards alike.

* A **prompt** given as chat messages: a lone user message becomes its content; a longer
  conversation (system prompts included) becomes a ``Role: content`` transcript, turns separated by
  a blank line (``"System: Be brief.\\n\\nUser: hi"``).
* A **response** (a completion or a reference) given as messages: the contents of its messages,
  separated by a blank line; a single message dict counts as a list of one.
* Message content is a string or a list of text blocks (``{"type": "text", "text": ...}``); other
  block types are an error, never dropped silently.

:mod:`genrm_plugin.data` (preference files -> training rows), :mod:`genrm_plugin.reward` (TRL,
OpenRLHF, veRL calls) and the BT scorer all call these functions, so a judge sees the same text for
the same conversation at training time and at reward time. Errors are :class:`ConversationError`
(a ``ValueError`` and a ``TypeError``) naming the offending field and row.
"""

from __future__ import annotations

from typing import Any, Sequence

TURN_SEPARATOR = "\n\n"


class ConversationError(ValueError, TypeError):
    """A prompt, completion or message that is not text or chat messages (the message names where)."""


def message_content(message: Any, where: str) -> str:
    """The text of one chat message (``content`` as a string or as text blocks)."""
    if not isinstance(message, dict):
        raise ConversationError(f"{where}: a chat message must be an object, got {type(message).__name__}")
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [b.get("text") for b in content if isinstance(b, dict) and b.get("type", "text") == "text"]
        if len(texts) == len(content) and all(isinstance(t, str) for t in texts):
            return "".join(texts)
        raise ConversationError(f"{where}: message content blocks must all be text blocks {{'type': 'text', 'text': ...}}")
    if content is None:
        raise ConversationError(f"{where}: chat message missing text field 'content'")
    raise ConversationError(f"{where}: message content must be a string or text blocks, got {type(content).__name__}")


def message_role(message: Any, where: str) -> str:
    """The ``role`` of one chat message."""
    if not isinstance(message, dict):
        raise ConversationError(f"{where}: a chat message must be an object, got {type(message).__name__}")
    role = message.get("role")
    if not isinstance(role, str):
        raise ConversationError(f"{where}: chat message missing field 'role'")
    return role


def prompt_text(prompt: Any, where: str) -> str:
    """The question the judge sees for a prompt given as text or as chat messages."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        if not prompt:
            raise ConversationError(f"{where}: empty conversation")
        turns = [(message_role(m, f"{where}[{i}]"), message_content(m, f"{where}[{i}]")) for i, m in enumerate(prompt)]
        if len(turns) == 1 and turns[0][0] == "user":
            return turns[0][1]
        return TURN_SEPARATOR.join(f"{role.capitalize()}: {content}" for role, content in turns)
    raise ConversationError(f"{where} must be a string or a non-empty list of chat messages, got {type(prompt).__name__}")


def response_text(response: Any, where: str, roles: Sequence[str] | None = None) -> str:
    """A completion or reference given as text, one message, or a list of messages (their contents).

    ``roles``: when given, every message must have one of these roles (preference files require
    ``assistant`` responses).
    """
    if isinstance(response, str):
        return response
    if isinstance(response, dict):
        response = [response]
    if isinstance(response, list):
        if not response:
            raise ConversationError(f"{where}: empty message list")
        contents = []
        for i, message in enumerate(response):
            if roles is not None:
                role = message_role(message, f"{where}[{i}]")
                if role not in roles:
                    raise ConversationError(f"{where}[{i}]: a response holds {'/'.join(roles)} messages, got role {role!r}")
            contents.append(message_content(message, f"{where}[{i}]"))
        return TURN_SEPARATOR.join(contents)
    raise ConversationError(f"{where} must be a string or a list of chat messages, got {type(response).__name__}")
