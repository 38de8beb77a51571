"""`vigint email test`: one message through the configured SMTP server, and what the server answered.

Alert emails are sent by a background task that retries quietly; a wrong password or port shows there only
as alerts that never arrive. This command tries the same settings and the same sender code once, in the
foreground.
"""

import asyncio
import smtplib

from rich.console import Console

from vigint.alerts.emails import compose_test_email, send_email
from vigint.cli.clients import validate_email
from vigint.cli.commands import Commands, option
from vigint.config import Settings
from vigint.errors import ConfigError, VigintError

commands = Commands()
email_commands = commands.group("email", "check that alert emails can be sent")


def smtp_server(settings: Settings) -> str:
    """Name the SMTP server the settings send through, as an operator writes it: host:port (security)."""
    email = settings.email
    return f"{email.smtp_host}:{email.smtp_port} ({email.security})"


@email_commands.command("test",
                        "send one message through the configured SMTP server and print what it answered",
                        option("--to", required=True, metavar="ADDRESS",
                               help="where to send the test message"))
async def email_test(args, settings: Settings, console: Console) -> int:
    recipient = validate_email(args.to)
    email = settings.email
    if not email.smtp_host and email.capture_dir is None:
        raise ConfigError("email is off: set [email] smtp_host (and smtp_port, security, username, password, "
                          "sender) in config.ini or as VIGINT_EMAIL_* variables")
    server = smtp_server(settings) if email.capture_dir is None else f"capture_dir {email.capture_dir}"
    try:
        answer = await asyncio.to_thread(send_email, email, compose_test_email(email, recipient, server))
    except (OSError, smtplib.SMTPException) as error:
        raise VigintError(f"cannot send through {server}: {_reason(error)}") from None
    console.print(f"Sent a test message to {recipient} through {server}; the server answered: {answer}",
                  highlight=False, markup=False, soft_wrap=True)
    return 0


def _reason(error: Exception) -> str:
    """One line saying why sending failed, from what the server or the system said (never the password)."""
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_text(error.smtp_error)}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{who}: {code} {_text(text)}" for who, (code, text) in error.recipients.items())
    return " ".join((getattr(error, "strerror", None) or str(error) or type(error).__name__).split())


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
