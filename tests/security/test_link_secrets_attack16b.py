"""A PagerDuty service's url whose password holds ``/`` (sixteenth independent pass, b).

The fifteenth pass (b) refused a service url holding a user and password by looking for ``@`` up to the first
``/``: ``https://admin:Pa/ss@acme.pagerduty.com/…`` (a password copied as it is) has its ``/`` first, so it was taken,
and linked from every alert of the pipeline: the password in the channel's messages. Run through the catalog
loader, as ``check`` and ``run`` read it."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from bot.catalog.load import parse_catalog
from bot.errors import ConfigError


@pytest.mark.parametrize("password", ["Literal/Passw0rd-6", "Literal-Passw0rd-7/"])
def test_a_pagerduty_url_whose_password_holds_a_slash_is_refused_never_quoting_it(password: str) -> None:
    text = f"""
        connections:
          d: {{provider: rivery, api_token: "${{KEY}}"}}
        pipelines:
          p:
            connection: d
            river_id: r1
            pagerduty: {{routing_key: "${{PD}}", url: "https://admin:{password}@acme.pagerduty.com/service-directory/P1"}}
        """
    with pytest.raises(ConfigError) as err:
        parse_catalog(yaml.safe_load(textwrap.dedent(text)), {"KEY": "key-12345678", "PD": "a" * 32})
    problems = err.value.problems
    assert len(problems) == 1 and "pipelines.p.pagerduty.url" in problems[0], problems
    assert not any("Passw0rd" in p for p in problems), problems
