"""A campaign with a local photo, sent to a real aiosmtpd server: each received message
carries the photo as a related part that its HTML refers to by cid:, without its GPS."""

from __future__ import annotations

import email
import email.policy
import io
from email.message import EmailMessage
from pathlib import Path

from PIL import Image

from kzmail.cli.common import current_workspace
from kzmail.services import send as service_send
from tests.helpers.campaigns import use_relay
from tests.helpers.images import CAPTION, GPS_IFD, with_article_image
from tests.helpers.smtp import SmtpServer

CAMPAIGN = Path("campaigns/kasachstan.yaml")


def test_photo_arrives_as_related_part_referred_to_by_cid(
    project: Path, smtp_server: SmtpServer
) -> None:
    with_article_image(project / CAMPAIGN)
    use_relay(project / CAMPAIGN, smtp_server)
    result = service_send.send(current_workspace(), project / CAMPAIGN)
    assert result.report.sent == len(smtp_server.handler.messages) == 12
    for item in smtp_server.handler.messages:
        message = email.message_from_bytes(item.data, policy=email.policy.strict)
        assert isinstance(message, EmailMessage)
        assert message.get_content_type() == "multipart/alternative"
        text, related = message.iter_parts()
        assert text.get_content_type() == "text/plain"
        assert related.get_content_type() == "multipart/related"
        assert related.get_param("type") == "text/html"
        html_part, image_part = related.iter_parts()
        html = html_part.get_content()
        cid = image_part["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html and f'alt="{CAPTION}"' in html
        assert image_part.get_content_type() == "image/jpeg"
        assert image_part.get_content_disposition() == "inline"
        photo = Image.open(io.BytesIO(image_part.get_content()))
        assert photo.size == (1200, 800)
        assert photo.getexif().get_ifd(GPS_IFD) == {} and "exif" not in photo.info
        assert "demo.jpg" not in item.data.decode("ascii", "replace")  # no file name leaks
