/**
 * A real Chromium for tests and checks, brought by package.json: @sparticuz/chromium ships a headless
 * build (unpacked to the temporary folder on first use; it needs only libc, libexpat and libgcc) and
 * playwright-core drives it. Nothing is downloaded and no system browser is assumed.
 */
import chromium from "@sparticuz/chromium";
import { chromium as playwright, type Browser, type Page } from "playwright-core";

/** Runs `use` with a fresh page, and closes the browser whatever happens. */
export async function withPage<T>(use: (page: Page, browser: Browser) => Promise<T>): Promise<T> {
  const browser = await playwright.launch({ executablePath: await chromium.executablePath(), args: chromium.args, headless: true, timeout: 120_000 });
  try {
    const page = await browser.newPage();
    return await use(page, browser);
  } finally {
    await browser.close();
  }
}
