"""The web playground in a real headless Chromium against a real server (SmolLM2 twice, the tiny SD model).

Needs Debian's browser and driver: `apt-get install -y chromium chromium-driver` (selenium drives
/usr/bin/chromedriver; nothing is downloaded). Without them the browser tests are skipped, saying so.
Set PLAYGROUND_SCREENSHOT=docs/playground.png to refresh the README's screenshot.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from gateway.app import HttpSettings, create_app
from gateway.routes import Access, declaration_of, served_routes
from scheduler.model_manager import ModelManager
from servables.sources import DEFAULT_LLM_PACKAGE, default_embeddings_dir, packaged_gguf
from tests.fixtures_image import ensure_tiny_sd
from tests.helpers import F32, metric, wait_for, write_config
from tests.server import ServerProcess

pytestmark = pytest.mark.slow  # its own server with five models, and a browser

KEY = "sk-playground"
LLM, LLM_B, IMAGE, EMBED = "smol", "smol-b", "tiny-sd", "minilm"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# what the model is made to say (regex-constrained output): markup that must stay text
ATTACK = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
ATTACK_REGEX = r'<img src=x onerror="window\.pwned=1"><script>window\.pwned=2</script>'


def test_playground_routes_are_declared_public_gets_and_ui_off_removes_them():
    on = {path: route for path, _, route in served_routes(create_app(ModelManager()))}
    for path in ("/", "/ui", "/ui/{name}"):
        assert declaration_of(on[path]).access is Access.PUBLIC
    off = {path for path, _, _ in served_routes(create_app(ModelManager(), HttpSettings(ui=False)))}
    assert not off & {"/", "/ui", "/ui/{name}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("playground")
    (folder / "key.txt").write_text(KEY + "\n")
    gguf = str(packaged_gguf(DEFAULT_LLM_PACKAGE))
    write_config(folder / "config.json", [
        {"name": LLM, "base_path": gguf, "task": "text_generation", "plugin_config": F32},
        {"name": LLM_B, "base_path": gguf, "task": "text_generation", "plugin_config": F32,
         "reasoning_parser": "qwen3"},
        {"name": IMAGE, "base_path": str(ensure_tiny_sd()), "task": "image_generation",
         "default_num_inference_steps": 2},
        {"name": EMBED, "base_path": str(default_embeddings_dir()), "task": "embeddings"}])
    proc = ServerProcess("--config_path", str(folder / "config.json"), "--api_key_file", str(folder / "key.txt"),
                         "--metrics_enable", log_name="playground").start()
    yield proc
    proc.stop()


def test_page_and_assets_are_served_with_a_strict_content_security_policy(server):
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "genai-gateway playground" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(server.url + "/ui").text == page.text
    assert httpx.get(server.url + "/ui/playground.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(server.url + "/ui/..%2Fplayground.py").status_code in (400, 404)
    assert httpx.get(server.url + "/ui/style.css").status_code == 404
    assert "cdn" not in page.text.lower() and "http" not in page.text.replace("http-equiv", "")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("headless Chromium is not installed: apt-get install -y chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1280,800",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def running(server, model: str) -> float:
    return metric(server, "genai_requests_running", name=model)


def set_value(browser, element_id: str, value: str) -> None:
    browser.execute_script("const e = document.getElementById(arguments[0]); e.value = arguments[1];"
                           "e.dispatchEvent(new Event('change'));", element_id, value)


def last_assistant(browser):
    return browser.find_elements("css selector", "#chat-log .msg.assistant")[-1]


def send(browser, text: str) -> None:
    count = len(browser.find_elements("css selector", "#chat-log .msg.assistant"))
    box = browser.find_element("id", "chat-input")
    box.send_keys(text)
    browser.find_element("id", "chat-send").click()
    wait_for(lambda: len(browser.find_elements("css selector", "#chat-log .msg.assistant")) > count, 10,
             message="the assistant's bubble")


def finished(browser):
    return last_assistant(browser).get_attribute("data-finish")


@pytest.fixture(scope="module")
def page(server, browser):
    browser.get(server.url + "/")
    wait_for(lambda: browser.find_elements("css selector", "#chat-model option"), 20, message="the model list")
    return browser


def test_chat_asks_for_the_key_then_streams_and_stop_cancels_on_the_server(server, page):
    set_value(page, "chat-model", LLM)
    set_value(page, "chat-max-tokens", "3000")
    set_value(page, "chat-extra", '{"ignore_eos": true}')
    send(page, "Tell me a long story about a dragon.")
    dialog = wait_for(lambda: page.find_element("id", "key-dialog").get_attribute("open") is not None
                      and page.find_element("id", "key-dialog"), 10, message="the API key dialog")
    page.find_element("id", "key-input").send_keys(KEY)
    dialog.find_element("css selector", "button").click()
    assert page.execute_script("return sessionStorage.getItem('genai-gateway.api-key')") == KEY
    body = last_assistant(page).find_element("css selector", ".body")
    seen = set()
    wait_for(lambda: seen.add(len(body.text)) or len({n for n in seen if n > 0}) >= 3, 60,
             message="text growing in the page while it streams")
    assert "streaming" in last_assistant(page).get_attribute("class")
    assert running(server, LLM) == 1
    page.find_element("id", "chat-stop").click()
    wait_for(lambda: finished(page) == "stopped", 10, message="the stopped state")
    wait_for(lambda: running(server, LLM) == 0, 10, message="the server to cancel the generation")
    assert "stopped" in last_assistant(page).find_element("css selector", ".meta").text


def test_switching_model_answers_from_that_model(page):
    set_value(page, "chat-model", LLM_B)
    set_value(page, "chat-max-tokens", "8")
    set_value(page, "chat-extra", "")
    send(page, "Hi!")
    wait_for(lambda: finished(page), 60, message="the answer")
    assert last_assistant(page).find_element("css selector", ".meta").text.startswith(LLM_B)


def test_model_output_with_markup_is_shown_as_text(page):
    set_value(page, "chat-model", LLM)
    set_value(page, "chat-max-tokens", "100")
    set_value(page, "chat-extra", json.dumps({"temperature": 0, "response_format": {
        "type": "regex", "regex": ATTACK_REGEX}}))
    send(page, "Say it: " + ATTACK + " and **bold** `code`")
    wait_for(lambda: finished(page), 60, message="the answer")
    reply = last_assistant(page).find_element("css selector", ".body")
    assert reply.text == ATTACK
    log = page.find_element("id", "chat-log")
    assert log.find_elements("css selector", "img, script") == []
    assert page.execute_script("return window.pwned === undefined")
    question = page.find_elements("css selector", "#chat-log .msg.user .body")[-1]
    assert ATTACK in question.text
    assert [e.text for e in question.find_elements("css selector", "strong, code")] == ["bold", "code"]


def test_reasoning_is_collapsible_and_tool_calls_are_shown(page):
    set_value(page, "chat-model", LLM_B)
    set_value(page, "chat-extra", json.dumps({"temperature": 0, "response_format": {
        "type": "regex", "regex": "<think>[a-z ]{3,20}</think>[A-Z][a-z ]{3,20}\\."}}))
    send(page, "What is the capital of France?")
    wait_for(lambda: finished(page), 60, message="the answer")
    reasoning = last_assistant(page).find_element("css selector", "details.reasoning")
    assert reasoning.get_attribute("open") is None and reasoning.is_displayed()
    reasoning.find_element("css selector", "summary").click()
    assert reasoning.find_element("css selector", ".reasoning-text").text
    assert "<think>" not in last_assistant(page).text and last_assistant(page).find_element(
        "css selector", ".body").text.endswith(".")
    tool = {"type": "function", "function": {"name": "add", "parameters": {
        "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}}
    set_value(page, "chat-model", LLM)
    set_value(page, "chat-extra", json.dumps({"temperature": 0, "tools": [tool], "tool_choice": "required"}))
    send(page, "Add 2 and 3.")
    wait_for(lambda: finished(page), 60, message="the tool call")
    assert finished(page) == "tool_calls"
    assert last_assistant(page).find_element("css selector", ".tools").text.startswith("tool call: add({")


def test_image_tab_generates_an_image(page):
    page.find_element("css selector", "#tabs button[data-tab=images]").click()
    set_value(page, "img-model", IMAGE)
    page.find_element("id", "img-prompt").send_keys("a cat")
    page.find_element("id", "img-go").click()
    image = wait_for(lambda: page.find_elements("css selector", "#gallery img"), 120,
                     message="the generated image")[0]
    assert wait_for(lambda: page.execute_script("return arguments[0].naturalWidth", image), 10,
                    message="decoding") > 0


@pytest.mark.parametrize("mode", ["rerank", "embeddings"])
def test_embeddings_tab_scores_documents_as_bars(page, mode):
    page.find_element("css selector", "#tabs button[data-tab=embed]").click()
    set_value(page, "emb-model", EMBED)
    set_value(page, "emb-mode", mode)
    set_value(page, "emb-query", "What is the capital of France?")
    set_value(page, "emb-docs", "I like green apples.\nParis is the capital of France.\nDogs bark.")
    page.execute_script("document.getElementById('emb-results').replaceChildren()")
    page.find_element("id", "emb-go").click()
    rows = wait_for(lambda: page.find_elements("css selector", "#emb-results .score"), 30, message="the scores")
    assert len(rows) == 3 and rows[0].text.endswith("Paris is the capital of France.")
    widths = [row.find_element("css selector", ".bar").size["width"] for row in rows]
    assert widths[0] > widths[-1] >= 0


def test_server_tab_shows_models_states_and_load(page):
    page.find_element("css selector", "#tabs button[data-tab=server]").click()
    rows = wait_for(lambda: page.find_elements("css selector", "#server-table tbody tr"), 20,
                    message="the server table")
    cells = {row.get_attribute("data-model"): [td.text for td in row.find_elements("css selector", "td")]
             for row in rows}
    assert set(cells) == {LLM, LLM_B, IMAGE, EMBED}
    assert cells[LLM][1:5] == ["llm", "AVAILABLE", "0", "0"]
    wait_for(lambda: "Refreshed" in page.find_element("id", "server-note").text, 10, message="a refresh")
    page.find_element("css selector", "#tabs button[data-tab=chat]").click()
    target = os.environ.get("PLAYGROUND_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        page.save_screenshot(target)
