"""Remote resources: what an HTML message fetches from other hosts when it is opened."""

from __future__ import annotations

from kzmail.render.remote import remote_hosts, remote_resources


def test_images_backgrounds_srcsets_and_stylesheets_are_remote_resources() -> None:
    html = (
        '<html><head><link rel="stylesheet" href="https://css.example/a.css">'
        "<style>@import \"https://imp.example/b.css\"; .x { background: url('//bg.example/c.png') }"
        '</style></head><body background="http://body.example/d.gif">'
        '<img src="https://images.example/foto.jpg" alt="">'
        '<img srcset="https://set.example/1.jpg 1x, https://set2.example/2.jpg 2x">'
        '<td style="background-image: url(https://inline.example/e.png)">x</td>'
        '<img src="HTTPS://images.example/other.jpg"></body></html>'
    )
    assert remote_hosts(list(remote_resources(html))) == [
        "css.example",
        "imp.example",
        "bg.example",
        "body.example",
        "images.example",
        "set.example",
        "set2.example",
        "inline.example",
    ]


def test_links_and_local_images_are_not_remote_resources() -> None:
    html = (
        '<a href="https://news.example/artikel">Artikel</a>'
        '<link rel="alternate" href="https://feed.example/rss">'
        '<img src="cid:foto@kzmail"><img src="data:image/png;base64,AAAA">'
        '<div style="color: red">https://text.example/ is text</div>'
    )
    assert remote_resources(html) == ()
