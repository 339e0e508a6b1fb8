"""Turn a campaign into messages: compile the template once, personalise it per subscriber,
assemble the MIME bytes (signed when DKIM is set up).

The only place that uses mjml, jinja2 and premailer.
"""
