import pytest
from django.core.exceptions import ValidationError

from approvals.conditions import ConditionError, compile_condition, evaluate_condition
from approvals.models import Tool
from approvals.summary import render_summary


class K:
    pk = "k1"
    name = "agent"
    scopes = ["actions:read"]
    unattended_mode = False


class W:
    slug = "acme"
    plan_rank = 3
    mode = "live"
    writes_enabled = True
    outbound_allowed = False


def test_syntax_error_names_the_position():
    with pytest.raises(ConditionError) as caught:
        compile_condition("params.amount >")
    assert "line 1, column 16" in str(caught.value)
    assert caught.value.position == "line 1, column 16"


def test_unknown_variables_are_refused_at_compile():
    with pytest.raises(ConditionError, match="Unknown variables in condition: request"):
        compile_condition("request.user == 'x'")


def test_compiled_programs_are_cached():
    assert compile_condition("params.amount > 1") is compile_condition("params.amount > 1")


def test_evaluation_sees_only_params_key_and_workspace():
    assert evaluate_condition(
        "params.a == 1 && key.name == 'agent' && workspace.slug == 'acme'",
        params={"a": 1},
        key=K,
        workspace=W,
    )


@pytest.mark.parametrize("source", ["params.amount > 1000", "params.missing == 1"])
def test_runtime_failures_raise_condition_error(source):
    with pytest.raises(ConditionError):
        evaluate_condition(source, params={"amount": "lots"}, key=K, workspace=W)


def test_tool_clean_reports_condition_position():
    tool = Tool(name="billing.refund", confirmation="conditional", condition="params.amount >")
    with pytest.raises(ValidationError) as caught:
        tool.clean()
    assert "column 16" in str(caught.value.message_dict["condition"])


def test_tool_clean_refuses_reserved_names():
    with pytest.raises(ValidationError) as caught:
        Tool(name="warden.workspace.go_live").clean()
    assert "reserved" in str(caught.value.message_dict["name"])


def test_summary_substitutes_params_safely():
    text = render_summary(
        "Refund {params.amount} to {params.customer.name} ({params.nope})",
        {"amount": 1200, "customer": {"name": "Ada"}},
        tool_name="billing.refund",
    )
    assert text == "Refund 1200 to Ada (?)"


def test_summary_never_interprets_agent_text():
    params = {"to": "{params.secret} {0.__class__} {{x}}\n<script>"}
    text = render_summary("Send to {params.to}", params, tool_name="email.send")
    assert text == "Send to {params.secret} {0.__class__} {{x}} <script>"


def test_summary_hides_secret_params():
    text = render_summary(
        "Token {params.api_key}", {"api_key": "s3cr3t"}, tool_name="x", secret_params=["api_key"]
    )
    assert text == "Token [secret]"


def test_summary_without_template_shows_the_argument_values():
    assert (
        render_summary("", {"b": 1, "a": "x"}, tool_name="crm.update")
        == 'Run crm.update with a="x", b=1'
    )
    assert render_summary("", {}, tool_name="crm.update") == "Run crm.update"


def test_summary_without_template_marks_hides_and_shortens_like_templates():
    params = {
        "note": 'ok", id=99\n' + "\u200b" + "y" * 300,
        "pw": "hunter2",
        "to": "ann@example.com" + "z" * 300,
    }
    text = render_summary("", params, tool_name="crm.note", secret_params=["pw"])
    assert text.startswith('Run crm.note with note="ok\\", id=99\\n⟦U+200B⟧yyy')
    assert "… (+" in text and "hunter2" not in text and "pw=[secret]" in text
    assert "ann@example.com" + "z" * 300 in text  # recipients whole
    assert "\n" not in text


def test_summary_says_how_much_of_a_long_value_was_left_out():
    text = render_summary("Note: {params.body}", {"body": "x" * 390}, tool_name="crm.note")
    assert text == "Note: " + "x" * 200 + "… (+190 characters)"


def test_summary_shows_recipient_fields_whole_with_hidden_characters_marked():
    to = "ann@example.com" + "\u200b" * 190 + ", attacker@evil.test"
    text = render_summary("Send email to {params.to}", {"to": to}, tool_name="email.send")
    assert text.endswith("⟦U+200B⟧, attacker@evil.test")
    assert text.count("⟦U+200B⟧") == 190
    assert "…" not in text


def test_summary_appends_recipient_fields_the_template_does_not_show():
    params = {"subject": "Hi", "cc": "boss@example.com", "meta": {"callback_url": "https://x.test"}}
    text = render_summary("Send {params.subject}", params, tool_name="email.send")
    assert text == "Send Hi (cc: boss@example.com; meta.callback_url: https://x.test)"
    untemplated = render_summary("", {"to": "ann@example.com", "body": "hi"}, tool_name="mail")
    assert untemplated == 'Run mail with body="hi", to="ann@example.com"'


def test_summary_never_shows_secret_params_even_if_recipient_like():
    text = render_summary(
        "Call hook", {"url": "https://hook.test/s3cr3t"}, tool_name="x", secret_params=["url"]
    )
    assert text == "Call hook"


def test_summary_marks_direction_changes():
    text = render_summary("Post {params.body}", {"body": 'this.\u202eevil",'}, tool_name="x")
    assert text == 'Post this.⟦U+202E⟧evil",'
