// Drives the Todo page in headless Chromium (Debian's, through playwright-core): add two items,
// tick one, delete one, reload, and report what the page shows. Saves a screenshot.
import { chromium } from 'playwright-core';

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
  await page.goto(url);
  await page.waitForSelector('#new-text');
  for (const text of ['Write the closing note', 'Run the benchmark']) {
    await page.fill('#new-text', text);
    await page.click('button[type=submit]');
    await page.waitForSelector(`li:has-text("${text}")`);
  }
  await page.check('li:has-text("Run the benchmark") input[type=checkbox]');
  await page.waitForSelector('li.done:has-text("Run the benchmark")');
  page.once('dialog', (d) => d.accept('Write the closing notes'));
  await page.click('li:has-text("Write the closing note") button.edit');
  await page.waitForSelector('li:has-text("Write the closing notes")');
  await page.fill('#new-text', 'Delete me');
  await page.click('button[type=submit]');
  await page.waitForSelector('li:has-text("Delete me")');
  await page.click('li:has-text("Delete me") button.delete');
  await page.waitForSelector('li:has-text("Delete me")', { state: 'detached' });
  await page.reload();
  await page.waitForSelector('li');
  const items = await page.$$eval('li', (lis) => lis.map((li) => ({
    text: li.querySelector('.text').textContent,
    done: li.querySelector('input').checked,
  })));
  const count = await page.textContent('#count');
  if (screenshot) await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ items, count }));
} finally {
  await browser.close();
}
