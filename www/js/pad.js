// The digit pad: draw a digit, and the trained network classifies it.
import { state } from './state.js';
import { $ } from './view.js';

export function setUpPad() {
  const pad = $('pad');
  const ink = pad.getContext('2d');
  let drawing = false;
  const clear = () => {
    ink.fillStyle = '#000';
    ink.fillRect(0, 0, pad.width, pad.height);
    $('prediction').innerHTML = '';
  };
  const stroke = (e) => {
    const r = pad.getBoundingClientRect();
    ink.fillStyle = '#fff';
    ink.beginPath();
    ink.arc((e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height, 11, 0, 2 * Math.PI);
    ink.fill();
  };
  pad.addEventListener('pointerdown', (e) => { drawing = true; stroke(e); });
  pad.addEventListener('pointermove', (e) => drawing && stroke(e));
  window.addEventListener('pointerup', () => { if (drawing) { drawing = false; classify(pad); } });
  $('clear').addEventListener('click', clear);
  clear();
}

// MNIST's preprocessing: the digit's bounding box scaled to 20×20, centred by mass in 28×28.
export function padToMnist(canvas) {
  const { width, height } = canvas;
  const pixels = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    if (pixels[4 * (y * width + x)] > 20) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  }
  if (x1 < 0) return null;
  const size = Math.max(x1 - x0, y1 - y0) + 1;
  const small = new OffscreenCanvas(28, 28).getContext('2d', { willReadFrequently: true });
  small.fillStyle = '#000';
  small.fillRect(0, 0, 28, 28);
  const scale = 20 / size;
  const [w, h] = [(x1 - x0 + 1) * scale, (y1 - y0 + 1) * scale];
  small.drawImage(canvas, x0, y0, x1 - x0 + 1, y1 - y0 + 1, 0, 0, w, h);
  const box = small.getImageData(0, 0, 28, 28).data;
  let [mass, mx, my] = [0, 0, 0];
  for (let i = 0; i < 784; i++) { const v = box[4 * i]; mass += v; mx += v * (i % 28); my += v * Math.floor(i / 28); }
  const [dx, dy] = [Math.round(14 - mx / mass), Math.round(14 - my / mass)];
  const out = new Float32Array(784);
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
    const [sx, sy] = [x - dx, y - dy];
    if (sx >= 0 && sx < 28 && sy >= 0 && sy < 28) out[y * 28 + x] = box[4 * (sy * 28 + sx)] / 255;
  }
  return out;
}

async function classify(pad) {
  if (state.lab?.trainedRound === undefined) { $('prediction').innerHTML = '<li>Run an experiment first.</li>'; return; }
  const input = padToMnist(pad);
  if (!input) return;
  const answer = await state.lab.classifyTimed(input);
  const probabilities = answer.probabilities;
  const best = probabilities.indexOf(Math.max(...probabilities));
  const share = `${(100 * answer.nonzeros / answer.weights).toFixed(1)}% of ${answer.weights.toLocaleString()} weights`;
  $('pad-speed').textContent = answer.sparse_us === null
    ? `Dense on ${answer.backend}: ${answer.dense_us.toFixed(0)} µs per digit (this model has no sparse engine).`
    : `Sparse ticket (CSR, wasm SIMD, ${share}): ${answer.sparse_us.toFixed(1)} µs per digit · dense on ${answer.backend}: ${answer.dense_us.toFixed(0)} µs (${(answer.dense_us / answer.sparse_us).toFixed(1)}× slower).`;
  if (window.lth) window.lth.pad = answer;
  $('prediction').innerHTML = Array.from(probabilities, (p, digit) =>
    `<li class="${digit === best ? 'best' : ''}">${'█'.repeat(Math.round(20 * p)).padEnd(20, '·')} ${(100 * p).toFixed(1)}%</li>`).join('');
}
