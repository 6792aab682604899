/** The page's few DOM helpers. */
export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
export const status = (text: string, state?: string) => {
  $("status").textContent = text;
  if (state) document.body.dataset.state = state;
};
export const number = (n: number) => n.toLocaleString("en-US");

