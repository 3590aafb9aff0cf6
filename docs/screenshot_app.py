"""Screenshot of the inpainting app in use, for the README (docs/images/app.png).

  pip install playwright==1.65.2   # drives Debian's chromium; no browser download
  python docs/screenshot_app.py --checkpoint=pretrained/fashion_mnist_inpaint

Starts `sample.py serve`, picks a test image, paints a stroke with the brush, presses Fill and
saves the page once the fills are shown.
"""
import argparse
import os
import shutil
import subprocess
import sys
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--checkpoint', required=True)
  parser.add_argument('--output', default=os.path.join(REPO, 'docs', 'images', 'app.png'))
  parser.add_argument('--port', type=int, default=7870)
  parser.add_argument('--example', type=int, default=0, help='which test image to pick')
  args = parser.parse_args()
  from playwright.sync_api import sync_playwright  # pylint: disable=import-outside-toplevel

  proc = subprocess.Popen([sys.executable, 'sample.py', 'serve', f'--checkpoint={args.checkpoint}',
                           f'--port={args.port}'], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  ready = threading.Event()

  def read():
    for line in proc.stdout:
      sys.stdout.write(line)
      if line.startswith('Serving '):
        ready.set()

  threading.Thread(target=read, daemon=True).start()
  try:
    if not ready.wait(timeout=300):
      sys.exit('error: the app did not start')
    with sync_playwright() as p:
      browser = p.chromium.launch(executable_path=shutil.which('chromium'), args=['--no-sandbox'])
      page = browser.new_page(viewport={'width': 1280, 'height': 900})
      page.goto(f'http://127.0.0.1:{args.port}/')
      page.wait_for_selector('text=DDGAN inpainting')
      page.locator(f'img[src*="example_{args.example}"]').first.click()
      page.wait_for_timeout(1500)
      page.get_by_role('button', name='Brush', exact=True).click()
      box = page.locator('canvas').first.bounding_box()
      cx, cy = box['x'] + box['width'] / 2, box['y'] + box['height'] / 2
      page.mouse.move(cx - 70, cy - 40)
      page.mouse.down()
      for i in range(25):  # a diagonal stroke across the middle of the picture
        page.mouse.move(cx - 70 + 6 * i, cy - 40 + 3 * i)
      page.mouse.up()
      page.get_by_role('button', name='Fill', exact=True).last.click()
      page.wait_for_selector('text=fill 1: NFE', timeout=300_000)
      page.wait_for_timeout(1000)
      os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
      page.screenshot(path=args.output)
      browser.close()
    print(f'wrote {args.output}')
  finally:
    proc.terminate()
    proc.wait(timeout=30)


if __name__ == '__main__':
  main()
