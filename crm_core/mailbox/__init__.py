"""Replies from the shared sales inbox (IMAP): read new mail, match it to contacts and threads, record it.

    threads    match a message to a stored thread (In-Reply-To/References) or a contact (sender)
    poller     read new messages by UID (imap-tools), record each once (its Message-ID)
"""
